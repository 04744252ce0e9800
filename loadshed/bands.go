package loadshed

import (
	"strconv"
	"sync/atomic"
)

// NumBands is the number of score bands counters are kept for: score 0,
// then 1-9, 10-19, ..., 80-89, and 90-100. Fixed bands keep metric label
// cardinality bounded whatever the taxonomy.
const NumBands = 11

var bandLabels = [NumBands]string{
	"0", "1-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90-100",
}

// Band returns the band index of a score (scores outside 0..100 are clamped).
func Band(score int) int {
	switch {
	case score <= 0:
		return 0
	case score >= 90:
		return NumBands - 1
	case score < 10:
		return 1
	}
	return score/10 + 1
}

// BandLabel returns the metric label of band i, e.g. "80-89".
func BandLabel(i int) string {
	if i < 0 || i >= NumBands {
		return "invalid"
	}
	return bandLabels[i]
}

// BandCounts are event counts per score band, indexed by Band.
type BandCounts [NumBands]uint64

// MarshalJSON renders the counts keyed by band label ("80-89": 12), which
// is what an operator reading /admin/shed needs.
func (b BandCounts) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, v := range b {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, BandLabel(i))
		buf = append(buf, ':')
		buf = strconv.AppendUint(buf, v, 10)
	}
	return append(buf, '}'), nil
}

// Total sums all bands.
func (b BandCounts) Total() uint64 {
	var t uint64
	for _, v := range b {
		t += v
	}
	return t
}

type bandCounters [NumBands]atomic.Uint64

func (c *bandCounters) inc(score int) { c[Band(score)].Add(1) }

func (c *bandCounters) load() BandCounts {
	var out BandCounts
	for i := range c {
		out[i] = c[i].Load()
	}
	return out
}

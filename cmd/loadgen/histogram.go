package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records latencies in microseconds in log-linear buckets: exact
// below 64 µs, then 64 sub-buckets per power of two, so any quantile is
// within 1% of the true value while memory stays fixed (about 14 KiB)
// however long the run.
const (
	histSub     = 64
	histMaxExp  = 32 // values up to 2^38 µs (~76 h) before clamping
	histBuckets = histSub * (histMaxExp + 1)
)

type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
}

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 7 // us>>shift lands in [64, 128)
	if shift > histMaxExp-1 {
		return histBuckets - 1
	}
	return histSub*(shift+1) + int(us>>uint(shift)) - histSub
}

// histValue returns the midpoint of bucket i in microseconds.
func histValue(i int) float64 {
	if i < histSub {
		return float64(i)
	}
	shift := i/histSub - 1
	m := uint64(i%histSub + histSub)
	lo := m << uint(shift)
	return float64(lo) + float64(uint64(1)<<uint(shift))/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d/time.Microsecond))].Add(1)
	h.total.Add(1)
}

func (h *histogram) merge(o *histogram) {
	for i := range o.counts {
		if v := o.counts[i].Load(); v > 0 {
			h.counts[i].Add(v)
		}
	}
	h.total.Add(o.total.Load())
}

// quantile returns the q-quantile in milliseconds, or 0 with no samples.
func (h *histogram) quantile(q float64) float64 {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return histValue(i) / 1000
		}
	}
	return histValue(histBuckets-1) / 1000
}

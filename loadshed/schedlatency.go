package loadshed

import (
	"math"
	"runtime/metrics"
	"time"
)

// The scheduling-latency signal: how long the gateway's goroutines wait, runnable, before
// they get a CPU (the Go runtime's /sched/latencies:seconds histogram), as a quantile over
// the last sampling period. It is the gateway's own overload as its requests feel it, whatever
// the cause: its own load beyond its cores, a cgroup quota throttling it, or neighbours on the
// machine taking the CPU. CPU utilisation cannot see the last two (a starved process uses
// little CPU), and in-flight counts only rise once requests are already slow; a goroutine
// that waits 20 ms for a core adds 20 ms to every request it serves.

// schedLatencyMetric is the runtime metric the signal reads.
const schedLatencyMetric = "/sched/latencies:seconds"

// SchedLatencySource reads the cumulative scheduling-latency histogram. The default reads
// the Go runtime; tests inject one.
type SchedLatencySource func() *metrics.Float64Histogram

// runtimeSchedLatency reads the runtime's histogram.
func runtimeSchedLatency() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedLatencyMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// RunQueueSource reads how many goroutines are runnable, waiting for a core, per core
// (GOMAXPROCS). The default reads the Go runtime; tests inject one.
type RunQueueSource func() float64

// runtimeRunQueue reads /sched/goroutines/runnable:goroutines over /sched/gomaxprocs:threads.
func runtimeRunQueue() float64 {
	s := []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}, {Name: "/sched/gomaxprocs:threads"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 || s[1].Value.Uint64() == 0 {
		return 0
	}
	return float64(s[0].Value.Uint64()) / float64(s[1].Value.Uint64())
}

// schedLatencySampler turns the cumulative histogram into a per-period quantile. It is used
// on the ticker goroutine only.
type schedLatencySampler struct {
	src    SchedLatencySource
	lastAt time.Time
	prev   []uint64 // bucket counts at the last sample
	primed bool
	value  float64 // seconds; 0 below min_samples
	mean   float64 // the period's mean wait, seconds; 0 below min_samples
	count  uint64  // goroutine wake-ups in the last period
}

// sample updates value if cfg's period has passed since the last sample.
func (s *schedLatencySampler) sample(now time.Time, cfg *SchedLatencySignalConfig) {
	if !cfg.Enabled {
		s.primed, s.value, s.mean, s.count = false, 0, 0, 0
		return
	}
	if s.primed && now.Sub(s.lastAt) < cfg.SampleEvery {
		return
	}
	src := s.src
	if src == nil {
		src = runtimeSchedLatency
	}
	h := src()
	if h == nil || len(h.Counts) == 0 {
		s.primed, s.value, s.mean = false, 0, 0
		return
	}
	if s.primed && len(s.prev) == len(h.Counts) {
		s.value, s.count = quantileOfDelta(h, s.prev, cfg.Quantile, uint64(cfg.MinSamples))
		s.mean = 0
		if s.value > 0 {
			s.mean = meanOfDelta(h, s.prev)
		}
	}
	s.prev = append(s.prev[:0], h.Counts...)
	s.lastAt, s.primed = now, true
}

// meanOfDelta is the mean of the samples added to h since prev, each read as the middle of
// its bucket (the lower bound for the open-ended last bucket, 0 for an empty delta).
func meanOfDelta(h *metrics.Float64Histogram, prev []uint64) float64 {
	var n, sum float64
	for i, c := range h.Counts {
		if c <= prev[i] {
			continue
		}
		lo, hi := max(h.Buckets[i], 0), h.Buckets[i+1]
		mid := lo
		if !math.IsInf(hi, 1) {
			mid = (lo + hi) / 2
		}
		k := float64(c - prev[i])
		n += k
		sum += k * mid
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// quantileOfDelta is the q-quantile (0..1) of the samples added to h since prev, read as the
// upper bound of the bucket it falls in (the lower bound for the open-ended last bucket),
// and the number of those samples. Fewer than minSamples new samples read as 0: an idle
// gateway has nothing to say about its latency.
func quantileOfDelta(h *metrics.Float64Histogram, prev []uint64, q float64, minSamples uint64) (float64, uint64) {
	var n uint64
	for i, c := range h.Counts {
		if c >= prev[i] {
			n += c - prev[i]
		}
	}
	if n == 0 || n < minSamples {
		return 0, n
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.Counts {
		if c >= prev[i] {
			seen += c - prev[i]
		}
		if seen >= rank {
			upper := h.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = h.Buckets[i]
			}
			return max(upper, 0), n
		}
	}
	return 0, n
}

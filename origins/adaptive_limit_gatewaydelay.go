package origins

import (
	"math"
	"runtime/metrics"
	"sync"
	"time"
)

// The gateway's own delay, for the serving bound (GradientLimit.updateServing).
// An attempt's time to headers, and so the answer rate the bound is computed
// from, includes the time the gateway takes to read the answer once it has
// arrived: the goroutine waiting for it must get a CPU again. That wait is the
// Go runtime's scheduling latency (/sched/latencies:seconds), the same
// process-wide histogram the global scope's sched_latency signal reads
// (loadshed/schedlatency.go); it is read here directly, so the origins package
// needs nothing from loadshed. Its mean is what each attempt spends, runnable,
// outside the origin (loadshed's starvedWait adds that same mean to every
// origin's waits).

// GatewayDelaySource reports the gateway's current mean scheduling wait per
// goroutine wake-up (0 when idle or unknown).
type GatewayDelaySource func() time.Duration

// gatewayDelayPeriod is how often the shared sampler reads the histogram: every
// origin's windows (100 ms as shipped) share one reading.
const gatewayDelayPeriod = 100 * time.Millisecond

// gatewayDelayMinWakeups: a period needs this many wake-ups for a mean; until it has
// them it is extended, up to gatewayDelayIdle, after which the gateway counts as idle
// (no delay).
const (
	gatewayDelayMinWakeups = 50
	gatewayDelayIdle       = time.Second
)

// gatewayDelaySampler turns the runtime's cumulative histogram into the mean of the
// last period. One is shared by every origin of the process.
type gatewayDelaySampler struct {
	mu     sync.Mutex
	read   func() *metrics.Float64Histogram
	now    func() time.Time
	lastAt time.Time
	prev   []uint64
	mean   time.Duration
}

var runtimeGatewayDelaySampler = &gatewayDelaySampler{read: readSchedLatencies, now: time.Now}

// runtimeGatewayDelay is the default GatewayDelaySource: this process's mean
// scheduling wait over the last period.
func runtimeGatewayDelay() time.Duration { return runtimeGatewayDelaySampler.delay() }

func readSchedLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// delay is the mean wait of the wake-ups of the last period, refreshed at most every
// gatewayDelayPeriod.
func (s *gatewayDelaySampler) delay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.lastAt.IsZero() && now.Sub(s.lastAt) < gatewayDelayPeriod {
		return s.mean
	}
	h := s.read()
	if h == nil || len(h.Counts) == 0 {
		return s.mean
	}
	if len(s.prev) == len(h.Counts) {
		var n, sum float64
		for i, c := range h.Counts {
			if c <= s.prev[i] {
				continue
			}
			// Each wait is read as the middle of its bucket (the lower bound of the
			// open-ended last one).
			lo, hi := math.Max(h.Buckets[i], 0), h.Buckets[i+1]
			mid := lo
			if !math.IsInf(hi, 1) {
				mid = (lo + hi) / 2
			}
			k := float64(c - s.prev[i])
			n += k
			sum += k * mid
		}
		switch {
		case n >= gatewayDelayMinWakeups:
			s.mean = time.Duration(sum / n * float64(time.Second))
		case now.Sub(s.lastAt) < gatewayDelayIdle:
			return s.mean // extend the period
		default:
			s.mean = 0
		}
	}
	s.prev = append(s.prev[:0], h.Counts...)
	s.lastAt = now
	return s.mean
}

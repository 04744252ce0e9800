package origins

import (
	"math"
	"sync"
	"sync/atomic"
)

// peakEWMA is a time-decayed latency estimate that jumps to any observation above it
// (Finagle/Linkerd "peak EWMA"): a slowdown is believed at once, a recovery only
// gradually over the decay constant. Because the weight of an observation depends on
// the time since the previous one, the estimate is averaged over time, not over
// samples, so a busy instance does not adapt faster than an idle one.
//
// Writers serialise on mu; readers (every pick) are lock-free. A reader may see a cost
// and a stamp from two different writes; the error is one decay step of a heuristic,
// which is cheaper to tolerate than to prevent.
type peakEWMA struct {
	mu    sync.Mutex
	cost  atomic.Uint64 // float64 bits, nanoseconds
	stamp atomic.Int64  // clock nanoseconds of the last observation
	// seeded: cost is still the configured prior. The first real observation replaces
	// it instead of being averaged in: with a 10s decay, a 30ms prior would otherwise
	// make every instance look alike for many seconds after start or discovery.
	seeded atomic.Bool
}

func newPeakEWMA(now int64, seed float64) *peakEWMA {
	e := &peakEWMA{}
	e.cost.Store(math.Float64bits(seed))
	e.stamp.Store(now)
	e.seeded.Store(true)
	return e
}

// decayFactor is the weight the old estimate keeps after elapsed nanoseconds.
func decayFactor(elapsed int64, tau float64) float64 {
	if elapsed <= 0 {
		return 1
	}
	return math.Exp(-float64(elapsed) / tau)
}

// get returns the estimate decayed towards zero for the time since the last
// observation, so an instance that stopped receiving traffic after a bad spell is
// eventually tried again instead of being shunned forever.
func (e *peakEWMA) get(now int64, tau float64) float64 {
	c := math.Float64frombits(e.cost.Load())
	return c * decayFactor(now-e.stamp.Load(), tau)
}

func (e *peakEWMA) observe(now int64, rtt, tau float64) {
	e.mu.Lock()
	c := math.Float64frombits(e.cost.Load())
	last := e.stamp.Load()
	if rtt > c || e.seeded.Load() {
		c = rtt
	} else {
		w := decayFactor(now-last, tau)
		c = c*w + rtt*(1-w)
	}
	e.cost.Store(math.Float64bits(c))
	e.seeded.Store(false)
	if now > last {
		e.stamp.Store(now)
	}
	e.mu.Unlock()
}

package origins

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Latency histogram: log-spaced buckets from histMin, each 15% wider than the last,
// up to about a minute. Quantiles are accurate to one bucket (±7.5%), which is plenty
// for a hedge timer, and memory is fixed whatever the traffic.
const (
	histBuckets = 96
	histMin     = 100 * time.Microsecond
	histGrowth  = 1.15
)

var histLogGrowth = math.Log(histGrowth)

// latencyWindow keeps two histograms, current and previous, each covering one period,
// so quantiles reflect roughly the last one to two periods. Recording is two atomics
// on the current histogram; rotation swaps under a mutex at most once per period.
type latencyWindow struct {
	period int64
	clock  func() int64

	mu      sync.Mutex
	cur     atomic.Pointer[latencyHist]
	prev    atomic.Pointer[latencyHist]
	rotated atomic.Int64
}

type latencyHist struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
}

func newLatencyWindow(period time.Duration, clock func() int64) *latencyWindow {
	w := &latencyWindow{period: int64(period), clock: clock}
	w.cur.Store(&latencyHist{})
	w.prev.Store(&latencyHist{})
	w.rotated.Store(clock())
	return w
}

func bucketOf(d time.Duration) int {
	if d <= histMin {
		return 0
	}
	i := int(math.Log(float64(d)/float64(histMin))/histLogGrowth) + 1
	if i >= histBuckets {
		i = histBuckets - 1
	}
	return i
}

// bucketUpper is the upper edge of bucket i.
func bucketUpper(i int) time.Duration {
	return time.Duration(float64(histMin) * math.Pow(histGrowth, float64(i)))
}

func (w *latencyWindow) maybeRotate(now int64) {
	if now-w.rotated.Load() < w.period {
		return
	}
	w.mu.Lock()
	if now-w.rotated.Load() >= w.period {
		w.prev.Store(w.cur.Load())
		w.cur.Store(&latencyHist{})
		w.rotated.Store(now)
	}
	w.mu.Unlock()
}

func (w *latencyWindow) record(d time.Duration) {
	w.maybeRotate(w.clock())
	h := w.cur.Load()
	h.counts[bucketOf(d)].Add(1)
	h.total.Add(1)
}

// quantile returns the q-quantile (0<q<1) over both histograms and the sample count.
func (w *latencyWindow) quantile(q float64) (time.Duration, uint64) {
	w.maybeRotate(w.clock())
	a, b := w.cur.Load(), w.prev.Load()
	n := a.total.Load() + b.total.Load()
	if n == 0 {
		return 0, 0
	}
	target := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := 0; i < histBuckets; i++ {
		seen += a.counts[i].Load() + b.counts[i].Load()
		if seen >= target {
			return bucketUpper(i), n
		}
	}
	return bucketUpper(histBuckets - 1), n
}

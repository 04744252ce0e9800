package loadshed

import (
	"sync/atomic"
	"time"
)

// maxBuckets bounds a sliding window's memory.
const maxBuckets = 600

// window counts completions, failures and summed latency over a sliding
// window of time buckets. Writers (Done on the request path) only add to
// the current bucket with atomics; the single ticker goroutine rotates
// buckets, clearing the oldest before making it current, so no lock is
// needed. A writer that loaded the index just before a rotation adds to
// the previous bucket, which is still inside the window.
type window struct {
	buckets  []bucket
	span     time.Duration
	width    time.Duration
	cur      atomic.Int64
	curStart time.Time // ticker-only
}

type bucket struct {
	total     atomic.Uint64
	failed    atomic.Uint64
	latencyNs atomic.Uint64
	latencyN  atomic.Uint64
	_         [32]byte // keep neighbouring buckets off one cache line
}

func newWindow(span time.Duration, n int, now time.Time) *window {
	if n < 1 {
		n = 1
	}
	if span <= 0 {
		span = time.Second
	}
	return &window{buckets: make([]bucket, n), span: span, width: span / time.Duration(n), curStart: now}
}

func (w *window) add(latency time.Duration, failed bool) {
	b := &w.buckets[w.cur.Load()]
	b.total.Add(1)
	if failed {
		b.failed.Add(1)
	}
	if latency > 0 {
		b.latencyNs.Add(uint64(latency))
		b.latencyN.Add(1)
	}
}

// advance rotates as many buckets as whole widths have passed since the
// current bucket began (at most a full lap, which empties the window).
func (w *window) advance(now time.Time) {
	elapsed := now.Sub(w.curStart)
	if elapsed < w.width {
		return
	}
	steps := int64(elapsed / w.width)
	w.curStart = w.curStart.Add(time.Duration(steps) * w.width)
	n := int64(len(w.buckets))
	if steps > n {
		steps = n
	}
	cur := w.cur.Load()
	for range steps {
		cur = (cur + 1) % n
		b := &w.buckets[cur]
		b.total.Store(0)
		b.failed.Store(0)
		b.latencyNs.Store(0)
		b.latencyN.Store(0)
		w.cur.Store(cur)
	}
}

// sums returns completions, failures, and the summed latency with its
// sample count (completions that carried a latency).
func (w *window) sums() (total, failed, latencyNs, latencyN uint64) {
	for i := range w.buckets {
		b := &w.buckets[i]
		total += b.total.Load()
		failed += b.failed.Load()
		latencyNs += b.latencyNs.Load()
		latencyN += b.latencyN.Load()
	}
	return total, failed, latencyNs, latencyN
}

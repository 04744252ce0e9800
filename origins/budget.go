package origins

import (
	"sync"
	"sync/atomic"
	"time"
)

const budgetSlots = 10

// Budget limits retries and hedges of one origin, after Linkerd's retry budget and
// Envoy's budget_percent: over a sliding window, extra attempts may not exceed
// ratio * requests + minPerSecond * window. In a full outage every request fails, but
// the extra load stays at about ratio instead of (attempts - 1).
//
// The window is a ring of time slots with atomic counters; a slot is reset under a
// mutex only when time moves into it, so the per-request cost is a few atomics.
type Budget struct {
	ratio      float64
	reserve    float64 // minPerSecond * window seconds
	slotNanos  int64
	clock      func() int64
	resetMu    sync.Mutex
	slots      [budgetSlots]budgetSlot
	denied     atomic.Uint64
	allowedTot atomic.Uint64
}

type budgetSlot struct {
	epoch    atomic.Int64
	requests atomic.Int64
	retries  atomic.Int64
}

// NewBudget builds a budget from cfg; clock returns monotonic nanoseconds (nil: time
// since creation).
func NewBudget(cfg BudgetConfig, clock func() int64) *Budget {
	if clock == nil {
		start := time.Now()
		clock = func() int64 { return int64(time.Since(start)) }
	}
	w := cfg.Window
	if w < time.Second/10 {
		w = time.Second / 10
	}
	b := &Budget{
		ratio:     cfg.Ratio,
		reserve:   cfg.MinPerSecond * w.Seconds(),
		slotNanos: int64(w) / budgetSlots,
		clock:     clock,
	}
	for i := range b.slots {
		b.slots[i].epoch.Store(-1)
	}
	return b
}

func (b *Budget) slot(now int64) *budgetSlot {
	e := now / b.slotNanos
	s := &b.slots[e%budgetSlots]
	if s.epoch.Load() != e {
		b.resetMu.Lock()
		if s.epoch.Load() != e {
			s.requests.Store(0)
			s.retries.Store(0)
			s.epoch.Store(e)
		}
		b.resetMu.Unlock()
	}
	return s
}

// RecordRequest counts one client request sent to the origin (once per request, not
// per attempt).
func (b *Budget) RecordRequest() { b.slot(b.clock()).requests.Add(1) }

// TryRetry reserves budget for one retry or hedge and reports whether it may go.
func (b *Budget) TryRetry() bool {
	now := b.clock()
	s := b.slot(now)
	s.retries.Add(1)
	req, ret := b.sums(now)
	if float64(ret) > b.ratio*float64(req)+b.reserve {
		s.retries.Add(-1)
		b.denied.Add(1)
		return false
	}
	b.allowedTot.Add(1)
	return true
}

func (b *Budget) sums(now int64) (requests, retries int64) {
	cur := now / b.slotNanos
	for i := range b.slots {
		s := &b.slots[i]
		if e := s.epoch.Load(); e > cur-budgetSlots && e <= cur {
			requests += s.requests.Load()
			retries += s.retries.Load()
		}
	}
	return requests, retries
}

// Allowed and Denied count TryRetry verdicts since creation, for metrics.
func (b *Budget) Allowed() uint64 { return b.allowedTot.Load() }

// Denied counts TryRetry calls refused since creation.
func (b *Budget) Denied() uint64 { return b.denied.Load() }

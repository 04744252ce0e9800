package ratelimit

import (
	"sync"
	"time"
)

// fakeClock is an injected clock tests advance explicitly.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func newTestLimiters(clk *fakeClock, policies ...Policy) *Limiters {
	l := New(Options{Now: clk.Now, SweepInterval: -1})
	if err := l.Update(policies); err != nil {
		panic(err)
	}
	return l
}

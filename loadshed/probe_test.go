package loadshed

import (
	"testing"
	"time"
)

// Through the origin scope: the learned limit's proven concurrency reaches
// the gate, so a critical request is held off an untested slot that a
// less critical one may take, and how long it is held depends on whether
// the origin has refused lately.
func TestOriginScopeHoldsCriticalRequestsOffUntestedConcurrency(t *testing.T) {
	cfg := Default()
	s, clk := newTestShedder(t, cfg)
	conc := OriginConcurrency{Limit: 4, Proven: 2, NoLoadRTT: time.Millisecond, Learned: true}
	s.SetConcurrencySource(func(string) (OriginConcurrency, bool) { return conc, true })
	o := s.Origin("app")
	clk.advance(s, 10*time.Millisecond)
	var held []Decision
	for range 2 {
		d, ok := o.Acquire(o.Decide(15))
		if !ok {
			t.Fatal("critical request refused below the proven concurrency")
		}
		held = append(held, d)
	}
	if o.gate.tryAcquire(15) {
		t.Fatal("a critical request took a slot past the proven concurrency")
	}
	d, ok := o.Acquire(o.Decide(probeMinScore))
	if !ok {
		t.Fatal("a less critical request was refused an untested slot under the limit")
	}
	held = append(held, d)
	c := o.cfg.Load()
	if w := o.probeWait(c); w != min(untestedWait, c.Queue.MaxWait) {
		t.Fatalf("probe wait %v at an origin that has not refused, want %v", w, min(untestedWait, c.Queue.MaxWait))
	}
	conc.Refuses = true
	clk.advance(s, 10*time.Millisecond)
	if w := o.probeWait(c); w != c.Queue.MaxWait {
		t.Fatalf("probe wait %v at an origin that refuses, want queue.max_wait %v", w, c.Queue.MaxWait)
	}
	for _, d := range held {
		o.Release(d)
	}
}

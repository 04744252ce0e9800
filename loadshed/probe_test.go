package loadshed

import (
	"testing"
	"time"
)

// Through the origin scope: the learned limit's proven concurrency and
// whether the origin refuses reach the gate, so a critical request is held
// off an untested slot that a less critical one may take.
func TestOriginScopeHoldsCriticalRequestsOffUntestedConcurrency(t *testing.T) {
	cfg := Default()
	s, clk := newTestShedder(t, cfg)
	conc := OriginConcurrency{Limit: 4, Proven: 3, NoLoadRTT: time.Millisecond, Learned: true}
	s.SetConcurrencySource(func(string) (OriginConcurrency, bool) { return conc, true })
	o := s.Origin("app")
	clk.advance(s, 10*time.Millisecond)
	var held []Decision
	for range 2 {
		d, ok := o.Acquire(o.Decide(15))
		if !ok {
			t.Fatal("critical request refused under the proven concurrency")
		}
		held = append(held, d)
	}
	if o.gate.tryAcquire(15) {
		t.Fatal("a critical request took the proven level's slot while the limit probes past it")
	}
	d, ok := o.Acquire(o.Decide(probeMinScore))
	if !ok {
		t.Fatal("a less critical request was refused an untested slot under the limit")
	}
	held = append(held, d)
	if o.gate.refuses {
		t.Fatal("the gate holds an origin that never refused for one that refuses")
	}
	conc.Refuses = true
	clk.advance(s, 10*time.Millisecond)
	if !o.gate.refuses {
		t.Fatal("the gate did not learn that the origin refuses")
	}
	c := o.cfg.Load()
	if pw := probeWaitsOf(c); pw.unknown != min(untestedWait, c.Queue.MaxWait) || pw.refusing != c.Queue.MaxWait {
		t.Fatalf("probe waits %+v, want %v not known to refuse and queue.max_wait %v refusing", pw, min(untestedWait, c.Queue.MaxWait), c.Queue.MaxWait)
	}
	for _, d := range held {
		o.Release(d)
	}
}

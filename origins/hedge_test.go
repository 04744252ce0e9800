package origins

import (
	"testing"
	"time"
)

func TestHedgeDelayPolicies(t *testing.T) {
	off := testOrigin(t, staticConfig("10.0.0.1:80"), nil)
	if _, ok := off.HedgeDelay(); ok {
		t.Fatal("hedging is off by default")
	}

	cfg := staticConfig("10.0.0.1:80")
	cfg.Hedge = HedgeConfig{Delay: 40 * time.Millisecond}
	if d, ok := testOrigin(t, cfg, nil).HedgeDelay(); !ok || d != 40*time.Millisecond {
		t.Fatalf("fixed delay: %v %v", d, ok)
	}

	cfg.Hedge = HedgeConfig{Percentile: 90, MinSamples: 100}
	o := testOrigin(t, cfg, nil)
	feed := func(n int, lat time.Duration) {
		for i := 0; i < n; i++ {
			_, done, err := o.Pick(nil)
			if err != nil {
				t.Fatal(err)
			}
			done.Done(Result{Outcome: OutcomeSuccess, Status: 200, Latency: lat})
		}
	}
	feed(50, 10*time.Millisecond)
	if _, ok := o.HedgeDelay(); ok {
		t.Fatal("percentile without fallback must wait for min_samples")
	}
	feed(40, 10*time.Millisecond)
	feed(10, 200*time.Millisecond) // 10% slow: p90 is at the fast/slow boundary
	feed(100, 10*time.Millisecond)
	d, ok := o.HedgeDelay()
	if !ok || d < 10*time.Millisecond || d > 12*time.Millisecond {
		t.Fatalf("p90 of mostly-10ms latencies: %v %v", d, ok)
	}
	// Failures do not count as latency samples: a fast-failing instance must not pull
	// the hedge delay down to nothing.
	for i := 0; i < 1000; i++ {
		_, done, _ := o.Pick(nil)
		done.Done(Result{Outcome: OutcomeConnectError, Latency: time.Microsecond})
	}
	if d2, _ := o.HedgeDelay(); d2 != d {
		t.Fatalf("failures changed the hedge delay: %v -> %v", d, d2)
	}

	cfg.Hedge = HedgeConfig{Percentile: 99, MinSamples: 1, MaxDelay: 50 * time.Millisecond, Delay: 5 * time.Millisecond}
	o = testOrigin(t, cfg, nil)
	if d, ok := o.HedgeDelay(); !ok || d != 5*time.Millisecond {
		t.Fatalf("fallback before warm-up: %v %v", d, ok)
	}
	feed(10, time.Second)
	if d, ok := o.HedgeDelay(); !ok || d != 50*time.Millisecond {
		t.Fatalf("max_delay cap: %v %v", d, ok)
	}
}

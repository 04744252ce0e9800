package origins

import (
	"errors"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/racebuild"
)

// othersThan is every instance of o but in.
func othersThan(o *Origin, in *Instance) []*Instance {
	var out []*Instance
	for _, x := range o.Instances() {
		if x != in {
			out = append(out, x)
		}
	}
	return out
}

// halfOpen opens bad's breaker and waits out the open period.
func halfOpen(t *testing.T, o *Origin, bad *Instance) {
	t.Helper()
	failUntilOpen(t, o, bad)
	eventually(t, time.Second, "open timeout", func() bool { return bad.brk.Load().available(o.now()) })
}

// An attempt admitted before the breaker opened and answered after it
// half-opened is not a probe: its success must not close the breaker, as
// gobreaker ignored a callback from an older generation.
func TestBreakerIgnoresAReportFromBeforeItOpened(t *testing.T) {
	cfg := breakerConfig()
	cfg.Breaker.HalfOpenMax = 1
	o := testOrigin(t, cfg, nil)
	bad := byAddr(o, "10.0.0.1:80")
	others := othersThan(o, bad)
	in, early, err := o.Pick(others)
	if err != nil || in != bad {
		t.Fatalf("early pick: %v %v", in, err)
	}
	halfOpen(t, o, bad)
	in, probe, err := o.Pick(others)
	if err != nil || in != bad || bad.BreakerState() != BreakerHalfOpen {
		t.Fatalf("probe pick: %v %v %v", in, err, bad.BreakerState())
	}
	early.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	if bad.BreakerState() != BreakerHalfOpen {
		t.Fatalf("a success admitted before the breaker opened moved it to %v", bad.BreakerState())
	}
	probe.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	if bad.BreakerState() != BreakerClosed {
		t.Fatalf("the probe's success left the breaker %v", bad.BreakerState())
	}
}

// A canceled probe (the client went away) says nothing about the instance:
// its slot goes back to the round and the next pick probes instead.
func TestBreakerCanceledProbeFreesItsSlot(t *testing.T) {
	cfg := breakerConfig()
	cfg.Breaker.HalfOpenMax = 1
	o := testOrigin(t, cfg, nil)
	bad := byAddr(o, "10.0.0.1:80")
	others := othersThan(o, bad)
	halfOpen(t, o, bad)
	_, p1, err := o.Pick(others)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Pick(others); !errors.Is(err, ErrNoHealthyInstances) {
		t.Fatalf("a second probe with half_open_max 1: %v", err)
	}
	p1.Done(Result{Outcome: OutcomeCanceled})
	if bad.BreakerState() != BreakerHalfOpen {
		t.Fatalf("a canceled probe moved the breaker to %v", bad.BreakerState())
	}
	in, p2, err := o.Pick(others)
	if err != nil || in != bad {
		t.Fatalf("probe after the canceled one: %v %v", in, err)
	}
	p2.Done(Result{Outcome: OutcomeConnectError})
	if bad.BreakerState() != BreakerOpen {
		t.Fatalf("a failed probe left the breaker %v", bad.BreakerState())
	}
}

// A pick and its report allocate nothing: the Ticket is pooled and the
// breaker admits without gobreaker's per-attempt closure.
func TestPickAndDoneAllocateNothing(t *testing.T) {
	if racebuild.Enabled {
		t.Skip("the race detector drops pooled objects at random")
	}
	cfg := breakerConfig()
	o := testOrigin(t, cfg, nil)
	n := testing.AllocsPerRun(1000, func() {
		_, d, err := o.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		d.Done(Result{Outcome: OutcomeSuccess, Status: 200, Latency: time.Millisecond})
	})
	if n != 0 {
		t.Fatalf("%v allocations per pick and report", n)
	}
}

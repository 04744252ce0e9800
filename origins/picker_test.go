package origins

import (
	"errors"
	"testing"
	"time"
)

func pickN(t *testing.T, o *Origin, n int, res Result) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		in, done, err := o.Pick(nil)
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		got[in.Addr()]++
		done.Done(res)
	}
	return got
}

// With the random source replaced, P2C's two candidates are known, so the
// pick is exact: the less loaded of the two, never a third instance.
func TestP2CPicksTheLessLoadedOfItsTwoDraws(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"), nil)
	draws := []int{0, 0} // i = 0, j = 0 -> 1 (j skips i): instances 1 and 2
	o.intN = func(n int) int { d := draws[0]; draws = draws[1:]; return d % n }
	busy, doneBusy, err := o.Pick(nil)
	if err != nil {
		t.Fatal(err)
	}
	draws = []int{0, 0}
	other, doneOther, err := o.Pick(nil)
	if err != nil {
		t.Fatal(err)
	}
	if busy == other {
		t.Fatalf("with %s busy, P2C over the same two draws picked it again", busy.Addr())
	}
	if got := []string{busy.Addr(), other.Addr()}; !(got[0] == "10.0.0.1:80" && got[1] == "10.0.0.2:80") && !(got[0] == "10.0.0.2:80" && got[1] == "10.0.0.1:80") {
		t.Fatalf("picks outside the two drawn candidates: %v", got)
	}
	doneBusy.Done(Result{Outcome: OutcomeSuccess})
	doneOther.Done(Result{Outcome: OutcomeSuccess})
}

func TestPickErrors(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80"), nil)
	o.SetInstances(nil)
	if _, _, err := o.Pick(nil); !errors.Is(err, ErrNoHealthyInstances) {
		t.Fatalf("empty origin: %v", err)
	}
	o.SetInstances([]InstanceConfig{{Address: "10.0.0.1:80"}})
	if _, _, err := o.Pick(o.Instances()); !errors.Is(err, ErrNoHealthyInstances) {
		t.Fatalf("all excluded: %v", err)
	}
	if o.InFlight() != 0 {
		t.Fatalf("failed picks leaked in-flight: %d", o.InFlight())
	}
}

func TestExcludeNeverReturnsTriedInstance(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"), nil)
	for i := 0; i < 200; i++ {
		first, d1, err := o.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		second, d2, err := o.Pick([]*Instance{first})
		if err != nil || second == first {
			t.Fatalf("retry went to the same instance (%v)", err)
		}
		d1.Done(Result{Outcome: OutcomeSuccess})
		d2.Done(Result{Outcome: OutcomeSuccess})
	}
}

func TestConcurrencyCap(t *testing.T) {
	cfg := staticConfig("10.0.0.1:80", "10.0.0.2:80")
	cfg.MaxConcurrency = 2
	o := testOrigin(t, cfg, nil)
	_, d1, err1 := o.Pick(nil)
	_, d2, err2 := o.Pick(nil)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, _, err := o.Pick(nil); !errors.Is(err, ErrOriginConcurrency) {
		t.Fatalf("third concurrent pick: %v", err)
	}
	d1.Done(Result{Outcome: OutcomeSuccess})
	if o.InFlight() != 1 {
		t.Fatalf("in-flight after one done: %d", o.InFlight())
	}
	_, d3, err := o.Pick(nil)
	if err != nil {
		t.Fatalf("after done: %v", err)
	}
	d2.Done(Result{Outcome: OutcomeSuccess})
	d3.Done(Result{Outcome: OutcomeSuccess})
	if o.InFlight() != 0 {
		t.Fatalf("in-flight leak %d", o.InFlight())
	}
}

func TestP2CRespectsWeightsAndInFlight(t *testing.T) {
	cfg := staticConfig()
	cfg.Instances = []InstanceConfig{{Address: "10.0.0.1:80", Weight: 3}, {Address: "10.0.0.2:80", Weight: 1}}
	o := testOrigin(t, cfg, nil)
	var dones []Ticket
	got := map[string]int{}
	for i := 0; i < 40; i++ {
		in, d, err := o.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		got[in.Addr()]++
		dones = append(dones, d)
	}
	// Equal latency; with attempts held open the scores (n+1)/w balance at 3:1.
	if a := got["10.0.0.1:80"]; a < 28 || a > 32 {
		t.Fatalf("weight 3 instance got %d of 40, want ~30", a)
	}
	for _, d := range dones {
		d.Done(Result{Outcome: OutcomeSuccess, Latency: 30 * time.Millisecond})
	}
}

func TestFastFailuresRaiseScore(t *testing.T) {
	cfg := staticConfig("10.0.0.1:80", "10.0.0.2:80")
	cfg.Breaker.ConsecutiveFailures = 1000 // isolate the EWMA penalty from the breaker
	cfg.Breaker.FailureRatio = 0
	o := testOrigin(t, cfg, nil)
	bad, good := byAddr(o, "10.0.0.1:80"), byAddr(o, "10.0.0.2:80")
	counts := map[*Instance]int{}
	for i := 0; i < 500; i++ {
		in, done, err := o.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[in]++
		if in == bad {
			done.Done(Result{Outcome: OutcomeStatus5xx, Status: 500, Latency: 100 * time.Microsecond})
		} else {
			done.Done(Result{Outcome: OutcomeSuccess, Status: 200, Latency: 2 * time.Millisecond})
		}
	}
	if counts[bad] > 5 {
		t.Fatalf("fast-failing instance attracted %d of 500 picks (good got %d)", counts[bad], counts[good])
	}
}

func TestRoundRobinCycles(t *testing.T) {
	cfg := staticConfig("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	cfg.LB = LBRoundRobin
	o := testOrigin(t, cfg, nil)
	got := pickN(t, o, 300, Result{Outcome: OutcomeSuccess})
	for a, n := range got {
		if n != 100 {
			t.Fatalf("%s got %d of 300", a, n)
		}
	}
}

func TestPanicThreshold(t *testing.T) {
	cfg := breakerConfig()
	cfg.PanicThreshold = 50
	o := testOrigin(t, cfg, nil)
	// One of four open: 75% eligible, above 50%: the open one gets nothing.
	failUntilOpen(t, o, byAddr(o, "10.0.0.1:80"))
	if n := pickN(t, o, 300, Result{Outcome: OutcomeSuccess})["10.0.0.1:80"]; n != 0 {
		t.Fatalf("open instance got %d picks above the panic threshold", n)
	}
	// Three of four open: 25% < 50%: panic mode spreads over all four.
	failUntilOpen(t, o, byAddr(o, "10.0.0.2:80"))
	failUntilOpen(t, o, byAddr(o, "10.0.0.3:80"))
	// P2C still ranks by score in panic mode, so the open instances (penalised by
	// their failures) need not get equal shares, but together a real part.
	got := pickN(t, o, 400, Result{Outcome: OutcomeSuccess, Latency: time.Millisecond})
	if open := 400 - got["10.0.0.4:80"]; open < 100 {
		t.Fatalf("panic mode must send traffic to open instances, got %v", got)
	}
	// Without a panic threshold only the healthy one serves.
	cfg.PanicThreshold = 0
	o.reconfigure(cfg) // breaker settings unchanged: states kept
	if got := pickN(t, o, 100, Result{Outcome: OutcomeSuccess}); got["10.0.0.4:80"] != 100 {
		t.Fatalf("panic disabled: %v", got)
	}
}

func TestCanceledDoesNotCountAgainstInstance(t *testing.T) {
	cfg := breakerConfig()
	o := testOrigin(t, cfg, nil)
	in := byAddr(o, "10.0.0.1:80")
	others := o.Instances()[1:]
	for i := 0; i < 10; i++ {
		got, done, err := o.Pick(others)
		if err != nil || got != in {
			t.Fatal(err)
		}
		done.Done(Result{Outcome: OutcomeCanceled, Latency: time.Minute})
	}
	if in.BreakerState() != BreakerClosed || in.Failures() != 0 {
		t.Fatalf("canceled attempts counted: %v failures=%d", in.BreakerState(), in.Failures())
	}
	if c := in.ewma.get(o.now(), o.pol.Load().tau); c > float64(time.Second) {
		t.Fatalf("canceled attempt latency fed the EWMA: %v", time.Duration(c))
	}
}

func TestPanicThresholdRoundRobinUsesAll(t *testing.T) {
	cfg := breakerConfig()
	cfg.PanicThreshold = 50
	cfg.LB = LBRoundRobin
	o := testOrigin(t, cfg, nil)
	for _, a := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"} {
		failUntilOpen(t, o, byAddr(o, a))
	}
	for a, n := range pickN(t, o, 400, Result{Outcome: OutcomeSuccess}) {
		if n != 100 {
			t.Fatalf("panic round robin: %s got %d of 400", a, n)
		}
	}
}

// A lone instance whose half-open breaker has let its probe through must
// still take traffic in panic mode, not answer "no healthy instances".
func TestLoneHalfOpenInstanceServesInPanicMode(t *testing.T) {
	cfg := DefaultOriginConfig()
	cfg.Instances = []InstanceConfig{{Address: "10.0.0.1:80"}}
	cfg.Breaker.ConsecutiveFailures = 1
	cfg.Breaker.OpenTimeout = 20 * time.Millisecond
	cfg.Breaker.HalfOpenMax = 1
	o := testOrigin(t, cfg, nil)

	_, done, err := o.Pick(nil)
	if err != nil {
		t.Fatal(err)
	}
	done.Done(Result{Outcome: OutcomeReset}) // opens the breaker
	in := byAddr(o, "10.0.0.1:80")
	eventually(t, 2*time.Second, "open timeout", func() bool { return in.eligible(o.now()) })
	_, probeDone, err := o.Pick(nil) // the half-open probe, still in flight
	if err != nil {
		t.Fatal(err)
	}
	defer probeDone.Done(Result{Outcome: OutcomeSuccess})
	if st := in.BreakerState(); st != BreakerHalfOpen {
		t.Fatalf("breaker %v, want half-open", st)
	}
	_, d2, err := o.Pick(nil)
	if err != nil {
		t.Fatalf("second pick while the probe is out: %v (want panic mode to serve)", err)
	}
	d2.Done(Result{Outcome: OutcomeSuccess})
}

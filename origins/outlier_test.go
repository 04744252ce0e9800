package origins

import (
	"sync"
	"testing"
	"time"
)

type outlierEvent struct {
	instance string
	ejected  bool
	reason   string
}

// outlierOrigin is a standalone origin over n instances with outlier
// detection on (every rule off unless tune sets it), a fake clock and a
// recorder of ejections and readmissions. No goroutine runs: the test calls
// tick.
func outlierOrigin(t *testing.T, n int, tune func(*OutlierConfig)) (*Origin, *fakeClock, *[]outlierEvent) {
	t.Helper()
	cfg := DefaultOriginConfig()
	for i := 0; i < n; i++ {
		cfg.Instances = append(cfg.Instances, InstanceConfig{Address: "10.0.0." + string(rune('1'+i)) + ":80"})
	}
	// The breaker must not be what keeps a failing instance out here.
	cfg.Breaker.ConsecutiveFailures, cfg.Breaker.FailureRatio = 1000, 0
	cfg.PanicThreshold = 0
	od := DefaultOutlierConfig()
	od.Enabled = true
	od.Interval = 10 * time.Second
	od.BaseEjectionTime = 30 * time.Second
	od.Consecutive5xx = 0
	od.SuccessRate.StdevFactor = 0
	od.Latency.Factor = 0
	tune(&od)
	cfg.OutlierDetection = od
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	clk := &fakeClock{t: int64(time.Hour)}
	var mu sync.Mutex
	events := &[]outlierEvent{}
	o := newOrigin("api", cfg, discardLogger(), Hooks{OnOutlierChange: func(_, instance string, ejected bool, reason string) {
		mu.Lock()
		*events = append(*events, outlierEvent{instance, ejected, reason})
		mu.Unlock()
	}})
	o.clock = clk.now
	o.SetInstances(cfg.Instances)
	o.outliers.begin(clk.now())
	return o, clk, events
}

// attempt sends one attempt to addr through Pick (every other instance
// excluded) and reports r; it fails the test if addr cannot be picked.
func attempt(t *testing.T, o *Origin, addr string, r Result) {
	t.Helper()
	in, done, err := o.Pick(others(o, addr))
	if err != nil || in.Addr() != addr {
		t.Fatalf("pick of %s: got %v, %v", addr, in, err)
	}
	done.Done(r)
}

func others(o *Origin, addr string) []*Instance {
	var out []*Instance
	for _, in := range o.Instances() {
		if in.Addr() != addr {
			out = append(out, in)
		}
	}
	return out
}

// pickable reports whether addr can be picked now.
func pickable(o *Origin, addr string) bool {
	in, done, err := o.Pick(others(o, addr))
	if err != nil {
		return false
	}
	done.Done(Result{Outcome: OutcomeCanceled})
	return in.Addr() == addr
}

var fail500 = Result{Outcome: OutcomeStatus5xx, Status: 500, Latency: time.Millisecond}

func TestOutlierConsecutive5xxEjectsForAGrowingTimeAndReadmits(t *testing.T) {
	o, clk, events := outlierOrigin(t, 3, func(c *OutlierConfig) { c.Consecutive5xx = 3 })
	bad := o.Instances()[0].Addr()
	attempt(t, o, bad, fail500)
	attempt(t, o, bad, fail500)
	attempt(t, o, bad, Result{Outcome: OutcomeSuccess, Status: 200}) // a success breaks the streak
	attempt(t, o, bad, fail500)
	attempt(t, o, bad, fail500)
	if !pickable(o, bad) {
		t.Fatal("ejected before three failures in a row")
	}
	attempt(t, o, bad, fail500)
	if pickable(o, bad) {
		t.Fatal("still picked after three 5xx in a row")
	}
	for i := 0; i < 200; i++ {
		in, done, err := o.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		if in.Addr() == bad {
			t.Fatalf("pick %d chose the ejected instance", i)
		}
		done.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	}
	if c := o.OutlierCounts(); c.Ejected != 1 || c.Ejections[EjectConsecutive5xx] != 1 {
		t.Fatalf("counts %+v", c)
	}
	if e := o.Ejection(byAddr(o, bad)); !e.Ejected || e.Remaining != 30*time.Second || e.Reason != EjectConsecutive5xx {
		t.Fatalf("ejection %+v, want 30s for consecutive_5xx", e)
	}

	clk.advance(30*time.Second - 1)
	if next := o.outliers.tick(o.pol.Load().outlier, clk.now()); next != clk.now()+1 {
		t.Errorf("next tick at %d, want the readmission at %d", next, clk.now()+1)
	}
	if pickable(o, bad) {
		t.Fatal("readmitted before base_ejection_time")
	}
	clk.advance(1)
	if !pickable(o, bad) {
		t.Fatal("not readmitted at base_ejection_time")
	}
	o.outliers.tick(o.pol.Load().outlier, clk.now())
	want := []outlierEvent{{bad, true, EjectConsecutive5xx}, {bad, false, ""}}
	if len(*events) != 2 || (*events)[0] != want[0] || (*events)[1] != want[1] {
		t.Fatalf("events %v, want %v", *events, want)
	}

	// Ejected again at once: the second ejection lasts twice as long.
	for i := 0; i < 3; i++ {
		attempt(t, o, bad, fail500)
	}
	if e := o.Ejection(byAddr(o, bad)); !e.Ejected || e.Remaining != 60*time.Second || e.Multiplier != 2 {
		t.Fatalf("second ejection %+v, want 60s with multiplier 2", e)
	}
}

func TestOutlierMultiplierDecaysWhileTheInstanceStaysIn(t *testing.T) {
	o, clk, _ := outlierOrigin(t, 3, func(c *OutlierConfig) { c.Consecutive5xx = 1; c.MaxEjectionTime = time.Hour })
	cfg := o.Config().OutlierDetection
	bad := o.Instances()[0].Addr()
	attempt(t, o, bad, fail500)
	clk.advance(30 * time.Second)
	o.outliers.tick(&cfg, clk.now())
	attempt(t, o, bad, fail500)
	if e := o.Ejection(byAddr(o, bad)); e.Multiplier != 2 {
		t.Fatalf("multiplier %d after two ejections", e.Multiplier)
	}
	clk.advance(60 * time.Second)
	o.outliers.tick(&cfg, clk.now()) // readmitted: no decay in this interval
	for i := 0; i < 2; i++ {
		clk.advance(cfg.Interval)
		o.outliers.tick(&cfg, clk.now())
	}
	if e := o.Ejection(byAddr(o, bad)); e.Ejected || e.Multiplier != 0 {
		t.Fatalf("after two intervals in: %+v, want multiplier 0", e)
	}
	attempt(t, o, bad, fail500)
	if e := o.Ejection(byAddr(o, bad)); e.Remaining != 30*time.Second {
		t.Fatalf("ejection after decay lasts %v, want base 30s", e.Remaining)
	}
}

func TestOutlierMaxEjectionPercentIsNeverExceeded(t *testing.T) {
	o, clk, _ := outlierOrigin(t, 3, func(c *OutlierConfig) { c.Consecutive5xx = 2; c.MaxEjectionPercent = 50 })
	a, b := o.Instances()[0].Addr(), o.Instances()[1].Addr()
	for i := 0; i < 2; i++ {
		attempt(t, o, a, fail500)
		attempt(t, o, b, fail500)
	}
	if pickable(o, a) || !pickable(o, b) {
		t.Fatalf("want only %s ejected (50%% of 3 instances is one)", a)
	}
	c := o.OutlierCounts()
	if c.Ejected != 1 || c.Skipped != 1 {
		t.Fatalf("counts %+v, want 1 ejected and 1 skipped", c)
	}
	// Once the first is back, the second goes at its next failure: its
	// streak is still at the threshold.
	clk.advance(30 * time.Second)
	o.outliers.tick(o.pol.Load().outlier, clk.now())
	attempt(t, o, b, fail500)
	if !pickable(o, a) || pickable(o, b) {
		t.Fatalf("want %s back and %s ejected", a, b)
	}
}

func TestOutlierSuccessRateBelowPeersIsEjected(t *testing.T) {
	o, clk, _ := outlierOrigin(t, 5, func(c *OutlierConfig) {
		c.SuccessRate = SuccessRateConfig{StdevFactor: 1.9, MinHosts: 5, MinRequests: 50}
	})
	cfg := o.Config().OutlierDetection
	ins := o.Instances()
	feed := func(in *Instance, n, failures int) {
		for i := 0; i < n; i++ {
			r := Result{Outcome: OutcomeSuccess, Status: 200, Latency: time.Millisecond}
			if i < failures {
				r = fail500
			}
			o.outliers.observe(&cfg, in, r, clk.now())
		}
	}
	// Interval 1: 5% failures everywhere, and 40% on the last one.
	for _, in := range ins[:4] {
		feed(in, 100, 5)
	}
	feed(ins[4], 100, 40)
	clk.advance(cfg.Interval)
	o.outliers.tick(&cfg, clk.now())
	if e := o.Ejection(ins[4]); !e.Ejected || e.Reason != EjectSuccessRate {
		t.Fatalf("instance at 60%% success among peers at 95%%: %+v", e)
	}
	for _, in := range ins[:4] {
		if o.Ejection(in).Ejected {
			t.Errorf("peer %s ejected", in.Addr())
		}
	}
	// Too few requests for a verdict: nothing is judged.
	o2, clk2, _ := outlierOrigin(t, 5, func(c *OutlierConfig) {
		c.SuccessRate = SuccessRateConfig{StdevFactor: 1.9, MinHosts: 5, MinRequests: 50}
	})
	for i, in := range o2.Instances() {
		fails := 0
		if i == 4 {
			fails = 40
		}
		for j := 0; j < 49; j++ {
			r := Result{Outcome: OutcomeSuccess, Status: 200}
			if j < fails {
				r = fail500
			}
			o2.outliers.observe(&cfg, in, r, clk2.now())
		}
	}
	clk2.advance(cfg.Interval)
	o2.outliers.tick(&cfg, clk2.now())
	if c := o2.OutlierCounts(); c.Ejected != 0 {
		t.Fatalf("ejected with fewer than min_requests: %+v", c)
	}
}

func TestOutlierSlowInstanceIsEjectedAgainstThePeersMedian(t *testing.T) {
	o, clk, _ := outlierOrigin(t, 3, func(c *OutlierConfig) {
		c.Latency = LatencyOutlierConfig{Factor: 3, MinDifference: 20 * time.Millisecond, MinHosts: 3, MinRequests: 10}
	})
	cfg := o.Config().OutlierDetection
	ins := o.Instances()
	run := func(lat [3]time.Duration) {
		for i, in := range ins {
			for j := 0; j < 10; j++ {
				o.outliers.observe(&cfg, in, Result{Outcome: OutcomeSuccess, Status: 200, Latency: lat[i]}, clk.now())
			}
		}
		clk.advance(cfg.Interval)
		o.outliers.tick(&cfg, clk.now())
	}
	// 2.5x the median: not an outlier.
	run([3]time.Duration{10 * time.Millisecond, 12 * time.Millisecond, 30 * time.Millisecond})
	if c := o.OutlierCounts(); c.Ejected != 0 {
		t.Fatalf("2.5x the median ejected: %+v", c)
	}
	// 3.5x but only 15ms slower: below min_difference.
	run([3]time.Duration{6 * time.Millisecond, 6 * time.Millisecond, 21 * time.Millisecond})
	if c := o.OutlierCounts(); c.Ejected != 0 {
		t.Fatalf("15ms slower ejected: %+v", c)
	}
	run([3]time.Duration{10 * time.Millisecond, 11 * time.Millisecond, 100 * time.Millisecond})
	if e := o.Ejection(ins[2]); !e.Ejected || e.Reason != EjectLatency {
		t.Fatalf("10x slower instance: %+v", e)
	}
	if o.Ejection(ins[0]).Ejected || o.Ejection(ins[1]).Ejected {
		t.Fatal("a fast instance was ejected")
	}
}

func TestOutlierGatewayFailuresCountTransportErrorsAnd502To504(t *testing.T) {
	o, _, _ := outlierOrigin(t, 3, func(c *OutlierConfig) { c.ConsecutiveGatewayFailures = 3 })
	bad := o.Instances()[0].Addr()
	attempt(t, o, bad, Result{Outcome: OutcomeConnectError})
	attempt(t, o, bad, Result{Outcome: OutcomeStatus5xx, Status: 503})
	attempt(t, o, bad, fail500) // a 500 is the instance's own answer: the streak ends
	attempt(t, o, bad, Result{Outcome: OutcomeTimeout})
	attempt(t, o, bad, Result{Outcome: OutcomeReset})
	if !pickable(o, bad) {
		t.Fatal("ejected although a 500 broke the gateway-failure streak")
	}
	attempt(t, o, bad, Result{Outcome: OutcomeStatus5xx, Status: 502})
	if e := o.Ejection(byAddr(o, bad)); !e.Ejected || e.Reason != EjectConsecutiveGatewayFailures {
		t.Fatalf("after three gateway failures: %+v", e)
	}
}

func TestOutlierConfigValidation(t *testing.T) {
	cfg := DefaultOriginConfig()
	cfg.Instances = []InstanceConfig{{Address: "10.0.0.1:80"}}
	cfg.OutlierDetection.Enabled = true
	cfg.OutlierDetection.MaxEjectionPercent = 120
	cfg.OutlierDetection.Latency.Factor = 0.5
	cfg.OutlierDetection.MaxEjectionTime = time.Second
	err := cfg.Validate()
	for _, want := range []string{"outlier_detection.max_ejection_percent", "outlier_detection.latency.factor", "outlier_detection.max_ejection_time"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	cfg.OutlierDetection.Enabled = false
	if err := cfg.Validate(); err != nil {
		t.Errorf("disabled detection is not validated: %v", err)
	}
}

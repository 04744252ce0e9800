package origins

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func twoOriginRegistry(t *testing.T, hooks Hooks) *Registry {
	t.Helper()
	east, west := DefaultOriginConfig(), DefaultOriginConfig()
	east.Instances = []InstanceConfig{{Address: "10.0.1.1:80"}, {Address: "10.0.1.2:80"}}
	west.Instances = []InstanceConfig{{Address: "10.0.2.1:80"}}
	r, err := NewRegistry(map[string]OriginConfig{"east": east, "west": west}, Options{Logger: discardLogger(), Hooks: hooks})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func apiGroup(failback time.Duration) GroupConfig {
	g := DefaultGroupConfig()
	g.Name, g.Origins = "api", []string{"east", "west"}
	g.Failover.FailbackAfter = failback
	return g
}

func TestGroupFailsOverOnEventsAndFailsBack(t *testing.T) {
	failovers := make(chan string, 10)
	r := twoOriginRegistry(t, Hooks{OnFailover: func(group, from, to, reason string) {
		failovers <- group + " " + from + "->" + to + " " + reason
	}})
	if err := r.SetGroups([]GroupConfig{apiGroup(0)}); err != nil {
		t.Fatal(err)
	}
	g, _ := r.Group("api")
	east, _ := r.Get("east")
	if g.Active() != east {
		t.Fatalf("active %v, want east", g.Active().Name())
	}
	await := func(want string) {
		t.Helper()
		select {
		case got := <-failovers:
			if got != want {
				t.Fatalf("failover %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no failover %q", want)
		}
	}
	// Discovery empties east: the change itself triggers the evaluation,
	// well before the 1s check interval.
	east.SetInstances(nil)
	await("api east->west no_instances")
	if g.Active().Name() != "west" || g.Status().Members[0].Reason != ReasonNoInstances {
		t.Fatalf("status %+v", g.Status())
	}
	east.SetInstances(east.Config().Instances)
	await("api west->east failback")

	// Health checks failing on every instance.
	for _, in := range east.Instances() {
		east.setHealthy(in, false)
	}
	await("api east->west no_eligible_instances")
	for _, in := range east.Instances() {
		east.setHealthy(in, true)
	}
	await("api west->east failback")
	if f := g.Failovers(); f[FailoverKey{"east", "west", ReasonNoInstances}] != 1 || f[FailoverKey{"west", "east", ReasonFailback}] != 2 {
		t.Errorf("failover counts %v", f)
	}
}

func TestGroupVerdictRules(t *testing.T) {
	cfg := DefaultOriginConfig()
	cfg.Instances = []InstanceConfig{{Address: "10.0.0.1:80"}, {Address: "10.0.0.2:80"}, {Address: "10.0.0.3:80"}, {Address: "10.0.0.4:80"}}
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1, Interval: time.Minute, OpenTimeout: time.Minute, HalfOpenMax: 1}
	o := testOrigin(t, cfg, nil)
	openBreaker := func(in *Instance) {
		slot, _ := in.brk.Load().admit()
		slot.report(errAttemptFailed)
	}
	ins := o.Instances()
	if v := o.failoverVerdict(o.now(), 0.5); v != "" {
		t.Fatalf("all fine: %q", v)
	}
	openBreaker(ins[0])
	openBreaker(ins[1])
	if v := o.failoverVerdict(o.now(), 0.5); v != "" {
		t.Fatalf("2 of 4 open is not more than 0.5: %q", v)
	}
	openBreaker(ins[2])
	if v := o.failoverVerdict(o.now(), 0.5); v != ReasonBreakersOpen {
		t.Fatalf("3 of 4 open: %q", v)
	}
	if v := o.failoverVerdict(o.now(), 1); v != "" {
		t.Fatalf("fraction 1 tolerates 3 of 4 open: %q", v)
	}
	ins[3].ejectedUntil.Store(o.now() + int64(time.Minute))
	if v := o.failoverVerdict(o.now(), 1); v != ReasonNoEligibleInstances {
		t.Fatalf("3 open and 1 ejected: %q", v)
	}
	// An open period that is over counts as closed: nothing else probes a
	// failed-over origin.
	if v := o.failoverVerdict(o.now()+int64(2*time.Minute), 0.5); v != "" {
		t.Fatalf("after the open timeout: %q", v)
	}
}

func TestGroupShedsAboveScoreFailsOver(t *testing.T) {
	r := twoOriginRegistry(t, Hooks{})
	var eastCutoff atomic.Int64
	eastCutoff.Store(100)
	r.SetCutoffSource(func(origin string) (float64, bool) {
		if origin == "east" {
			return float64(eastCutoff.Load()), true
		}
		return 100, true
	})
	g := apiGroup(0)
	g.Failover.ShedAboveScore = 50
	if err := r.SetGroups([]GroupConfig{g}); err != nil {
		t.Fatal(err)
	}
	grp, _ := r.Group("api")
	eastCutoff.Store(50) // sheds above 50 only: still healthy
	r.groupMu.Lock()
	r.evaluateGroupsLocked(time.Now())
	r.groupMu.Unlock()
	if grp.Active().Name() != "east" {
		t.Fatalf("cutoff 50 with shed_above_score 50: active %s", grp.Active().Name())
	}
	eastCutoff.Store(49)
	r.groupMu.Lock()
	r.evaluateGroupsLocked(time.Now())
	r.groupMu.Unlock()
	if st := grp.Status(); st.Active != "west" || st.Members[0].Reason != ReasonShedding {
		t.Fatalf("cutoff 49: %+v", st)
	}
}

func TestGroupCrossToAndKeptStateOnReload(t *testing.T) {
	r := twoOriginRegistry(t, Hooks{})
	g := apiGroup(time.Hour)
	if err := r.SetGroups([]GroupConfig{g}); err != nil {
		t.Fatal(err)
	}
	grp, _ := r.Group("api")
	east, _ := r.Get("east")
	west, _ := r.Get("west")
	if grp.CrossTo(east) != nil {
		t.Fatal("crosses without cross_origin_retries")
	}
	g.CrossOriginRetries = true
	if err := r.SetGroups([]GroupConfig{g}); err != nil {
		t.Fatal(err)
	}
	if same, _ := r.Group("api"); same != grp {
		t.Fatal("a group with the same members was replaced")
	}
	if grp.CrossTo(east) != west || grp.CrossTo(west) != east {
		t.Fatalf("cross targets %v %v", grp.CrossTo(east), grp.CrossTo(west))
	}
	west.SetInstances(nil)
	r.groupMu.Lock()
	r.evaluateGroupsLocked(time.Now())
	r.groupMu.Unlock()
	if grp.CrossTo(east) != nil {
		t.Fatal("crosses to an unhealthy member")
	}
}

func TestGroupValidationNamesKeyPaths(t *testing.T) {
	r := twoOriginRegistry(t, Hooks{})
	bad := apiGroup(-time.Second)
	bad.Origins = []string{"east", "nowhere", "east"}
	bad.Failover.MaxOpenBreakerFraction = 0
	dup := apiGroup(0)
	clash := apiGroup(0)
	clash.Name = "west"
	err := r.SetGroups([]GroupConfig{bad, dup, clash})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"[0].origins[1]: unknown origin \"nowhere\"",
		"[0].origins[2]: origin \"east\" is listed twice",
		"[0].failover.max_open_breaker_fraction",
		"[0].failover.failback_after",
		"[1].name: \"api\" is already the name of origin_groups[0]",
		"[2].name: \"west\" is also an origin's name",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if len(r.GroupNames()) != 0 {
		t.Fatal("an invalid list was applied")
	}
}

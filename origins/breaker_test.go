package origins

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func breakerConfig() OriginConfig {
	cfg := staticConfig("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80")
	cfg.Breaker = BreakerConfig{
		ConsecutiveFailures: 3, Interval: time.Second, OpenTimeout: 100 * time.Millisecond, HalfOpenMax: 2,
	}
	cfg.PanicThreshold = 0
	return cfg
}

// failUntilOpen sends failures to in (excluding the others) until its breaker opens.
func failUntilOpen(t *testing.T, o *Origin, in *Instance) {
	t.Helper()
	others := make([]*Instance, 0)
	for _, x := range o.Instances() {
		if x != in {
			others = append(others, x)
		}
	}
	for i := 0; in.BreakerState() != BreakerOpen; i++ {
		if i > 10 {
			t.Fatal("breaker did not open")
		}
		got, done, err := o.Pick(others)
		if err != nil || got != in {
			t.Fatalf("pick: %v %v", got, err)
		}
		done.Done(Result{Outcome: OutcomeConnectError})
	}
}

func TestBreakerOpensHalfOpensCloses(t *testing.T) {
	logs := &syncBuffer{}
	var changes []string
	o := newOrigin("api", breakerConfig(), slog.New(slog.NewTextHandler(logs, nil)), Hooks{
		OnBreakerChange: func(origin, inst string, from, to BreakerState) {
			changes = append(changes, from.String()+">"+to.String())
		},
	})
	o.SetInstances(breakerConfig().Instances)
	bad := byAddr(o, "10.0.0.1:80")
	failUntilOpen(t, o, bad)
	if bad.Requests() != 3 {
		t.Fatalf("opened after %d failures, want 3", bad.Requests())
	}
	for a := range pickN(t, o, 200, Result{Outcome: OutcomeSuccess}) {
		if a == bad.Addr() {
			t.Fatal("open instance picked")
		}
	}
	// After open_timeout it is eligible again and the breaker half-opens on admission;
	// a failing probe re-opens it.
	others := []*Instance{byAddr(o, "10.0.0.2:80"), byAddr(o, "10.0.0.3:80"), byAddr(o, "10.0.0.4:80")}
	eventually(t, time.Second, "open timeout", func() bool { return bad.brk.Load().available(o.now()) })
	in, done, err := o.Pick(others)
	if err != nil || in != bad || bad.BreakerState() != BreakerHalfOpen {
		t.Fatalf("probe pick: %v %v %v", in, err, bad.BreakerState())
	}
	done.Done(Result{Outcome: OutcomeTimeout})
	if bad.BreakerState() != BreakerOpen {
		t.Fatalf("failed probe must reopen, got %v", bad.BreakerState())
	}
	// Next probe round: half_open_max=2 concurrent probes, a third is refused, two
	// successes close the breaker.
	eventually(t, time.Second, "second open timeout", func() bool { return bad.brk.Load().available(o.now()) })
	_, p1, err1 := o.Pick(others)
	_, p2, err2 := o.Pick(others)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, _, err := o.Pick(others); !errors.Is(err, ErrNoHealthyInstances) {
		t.Fatalf("third half-open probe must be refused: %v", err)
	}
	p1.Done(Result{Outcome: OutcomeSuccess})
	p2.Done(Result{Outcome: OutcomeSuccess})
	if bad.BreakerState() != BreakerClosed {
		t.Fatalf("two good probes must close, got %v", bad.BreakerState())
	}
	gotChanges := strings.Join(changes, " ")
	if gotChanges != "closed>open open>half_open half_open>open open>half_open half_open>closed" {
		t.Fatalf("transitions: %s", gotChanges)
	}
	out := logs.String()
	if !strings.Contains(out, "origin=api") || !strings.Contains(out, "instance=10.0.0.1:80") || !strings.Contains(out, "to=open") {
		t.Fatalf("state changes must be logged with origin and instance:\n%s", out)
	}
}

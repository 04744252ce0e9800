package loadshed

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func experimentConfig(exps ...ExperimentConfig) Config {
	cfg := Default()
	cfg.Chaos.Experiments = exps
	return cfg
}

func userReq(id string) *fakeRequest {
	r := req("GET", "/x")
	r.headers["X-User-Id"] = id
	return r
}

func TestExperimentGroupsAreStableAndSizedByFraction(t *testing.T) {
	exp := ExperimentConfig{Name: "checkout", Key: "header:X-User-Id", Fraction: 0.1, Action: ActionShed, Duration: time.Hour}
	s, _ := newTestShedder(t, experimentConfig(exp))
	counts := map[Group]int{}
	const users = 20000
	for i := range users {
		id := "user-" + strconv.Itoa(i)
		m, ok := s.Experiment("", userReq(id), 50)
		g := GroupNone
		if ok {
			g = m.Group
		}
		counts[g]++
		for range 2 { // the same key always lands in the same group
			m2, ok2 := s.Experiment("", userReq(id), 50)
			if ok2 != ok || m2 != m {
				t.Fatalf("%s: %+v then %+v", id, m, m2)
			}
		}
		if want := GroupOf("checkout", []byte(id), 0.1); g != want {
			t.Fatalf("%s: group %v, GroupOf says %v", id, g, want)
		}
		switch g {
		case GroupExperiment:
			if m.Action != ActionShed {
				t.Fatalf("experiment member without the action: %+v", m)
			}
		case GroupControl:
			if m.Action != "" || m.Status != 0 || m.Delay != 0 {
				t.Fatalf("control member is acted on: %+v", m)
			}
		}
	}
	for _, g := range []Group{GroupExperiment, GroupControl} {
		if share := float64(counts[g]) / users; math.Abs(share-0.1) > 0.01 {
			t.Errorf("%v share %.3f, want 0.10 +- 0.01", g, share)
		}
	}
	// No key, out of the score range, score 0: not counted.
	if _, ok := s.Experiment("", req("GET", "/"), 50); ok {
		t.Error("a request without the key header was counted")
	}
	if _, ok := s.Experiment("", userReq("user-1"), 0); ok {
		t.Error("score 0 was counted")
	}
}

func TestExperimentEndsAfterItsDurationAndReloadKeepsTheClock(t *testing.T) {
	var events []string
	exp := ExperimentConfig{Name: "e1", Key: "client_ip", Fraction: 0.5, Action: ActionFail, Duration: time.Minute}
	s, clk := newTestShedder(t, experimentConfig(exp), WithExperimentEvents(func(e ExperimentEvent) {
		events = append(events, e.Name+" "+e.What)
	}))
	// With fraction 0.5 every address is in one of the groups.
	r := req("GET", "/")
	r.ip = netip.MustParseAddr("198.51.100.1")
	if m, ok := s.Experiment("", r, 50); !ok || (m.Group == GroupExperiment && m.Status != 500) {
		t.Fatalf("membership %+v %v", m, ok)
	}
	clk.advance(s, 30*time.Second)
	// A reload that leaves the experiment as it is keeps its clock...
	cfg := experimentConfig(exp)
	cfg.Scoring.DefaultScore = 60
	if err := s.Update(cfg); err != nil {
		t.Fatal(err)
	}
	clk.advance(s, 29*time.Second)
	if _, ok := s.Experiment("", r, 50); !ok {
		t.Fatal("experiment over before its duration")
	}
	clk.advance(s, 2*time.Second)
	if _, ok := s.Experiment("", r, 50); ok {
		t.Fatal("experiment still running after its duration (a reload restarted its clock?)")
	}
	if st := s.Snapshot().Experiments; len(st) != 1 || st[0].Active {
		t.Fatalf("states %+v", st)
	}
	// ... and does not revive an ended one; a changed one starts again.
	if err := s.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Experiment("", r, 50); ok {
		t.Fatal("a reload revived an ended experiment")
	}
	exp.Duration = 2 * time.Minute
	if err := s.Update(experimentConfig(exp)); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Experiment("", r, 50); !ok {
		t.Fatal("the changed experiment did not start")
	}
	if err := s.Update(Default()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Experiment("", r, 50); ok {
		t.Fatal("a removed experiment still runs")
	}
	if got := strings.Join(events, ", "); got != "e1 started, e1 ended, e1 started, e1 stopped" {
		t.Errorf("events: %s", got)
	}
}

func TestExperimentScopesAndFirstClaimWins(t *testing.T) {
	a := ExperimentConfig{Name: "a", Key: "header:X-User-Id", Fraction: 0.5, Action: ActionShed, Duration: time.Hour}
	b := ExperimentConfig{Name: "b", Key: "header:X-User-Id", Fraction: 0.5, Action: ActionDelay, Delay: time.Second, Duration: time.Hour}
	o := ExperimentConfig{Name: "o", Key: "header:X-User-Id", Fraction: 0.5, Origin: "Users", Action: ActionShed, Duration: time.Hour}
	s, _ := newTestShedder(t, experimentConfig(a, b, o))
	if !s.ChaosExperiments("") || !s.ChaosExperiments("users") || s.ChaosExperiments("other") {
		t.Fatal("scopes")
	}
	for i := range 100 {
		m, ok := s.Experiment("", userReq(strconv.Itoa(i)), 50)
		if !ok || m.Experiment != "a" { // fraction 0.5: a claims everyone
			t.Fatalf("global membership %+v %v", m, ok)
		}
		if m, ok := s.Experiment("users", userReq(strconv.Itoa(i)), 50); !ok || m.Experiment != "o" {
			t.Fatalf("origin membership %+v %v", m, ok)
		}
	}
}

func TestExperimentValidation(t *testing.T) {
	cfg := experimentConfig(
		ExperimentConfig{Name: "x", Key: "cookie:a", Fraction: 0.7, Action: "explode", MinScore: 0, MaxScore: 101},
		ExperimentConfig{Name: "x", Key: "client_ip", Fraction: 0.1, Action: ActionFail, Status: 200, Duration: time.Minute},
		ExperimentConfig{Name: "d", Key: "client_ip", Fraction: 0.1, Action: ActionDelay, Duration: time.Minute},
	)
	err := cfg.Validate()
	for _, want := range []string{
		"chaos.experiments[0].key", "chaos.experiments[0].fraction", "chaos.experiments[0].action",
		"chaos.experiments[0].max_score", "chaos.experiments[0].duration", "chaos.experiments[1].name",
		"chaos.experiments[1].status", "chaos.experiments[2].delay",
	} {
		if err == nil || !strings.Contains(err.Error(), want+":") {
			t.Errorf("missing %s in %v", want, err)
		}
	}
}

func TestExperimentMembershipAllocatesNothingForClientIP(t *testing.T) {
	exp := ExperimentConfig{Name: "ip", Key: "client_ip", Fraction: 0.5, Action: ActionShed, Duration: time.Hour}
	s, _ := newTestShedder(t, experimentConfig(exp))
	r := req("GET", "/")
	if n := testing.AllocsPerRun(1000, func() { _, _ = s.Experiment("", r, 50) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/loadshed"
)

const groupsConfig = `
server: {listen: "127.0.0.1:0"}
admin: {listen: ""}
access_log: {enabled: false}
origins:
  east:
    instances: [{address: "127.0.0.1:9"}]
  west:
    instances: [{address: "127.0.0.1:10"}]
origin_groups:
  - {name: api, origins: [east, west], failover: {failback_after: 0s}}
routes:
  - {name: api, match: {path_prefix: /}, origin_group: api}
`

// A reload brings origin groups in with their origins; readiness counts a
// group member without instances as covered while the group's active
// origin has some.
func TestReloadAppliesOriginGroupsAndReadinessCountsThem(t *testing.T) {
	a := startApp(t)
	cfg, err := config.ParseWithEnv([]byte(groupsConfig), "groups.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.apply(cfg); err != nil {
		t.Fatal(err)
	}
	g, ok := a.rt.origins.Group("api")
	if !ok || g.Active().Name() != "east" {
		t.Fatalf("group api after the reload: %v", ok)
	}
	if err := a.rt.readiness(); err != nil {
		t.Fatalf("readiness: %v", err)
	}
	east, _ := a.rt.origins.Get("east")
	west, _ := a.rt.origins.Get("west")
	east.SetInstances(nil)
	// The change's event makes the evaluator judge the group soon; setting
	// the same groups again judges it now (and keeps its state).
	if err := a.rt.origins.SetGroups(cfg.OriginGroups); err != nil {
		t.Fatal(err)
	}
	if g.Active() != west {
		t.Fatalf("active %s after east lost its instances", g.Active().Name())
	}
	if err := a.rt.readiness(); err != nil {
		t.Errorf("east is empty but api serves from west: readiness %v", err)
	}
	west.SetInstances(nil)
	if err := a.rt.readiness(); err == nil || !strings.Contains(err.Error(), "has no instances") {
		t.Errorf("both members empty: readiness %v", err)
	}
	b, err := json.Marshal(a.rt.groupsView())
	if err != nil || !strings.Contains(string(b), `"active":"west"`) {
		t.Errorf("groups view %s (%v)", b, err)
	}
}

// originCutoff hands origin groups the origin scope's cutoff, and 100 (no
// shedding) while that scope is in dry run.
func TestOriginCutoffFollowsTheShedderAndIgnoresDryRun(t *testing.T) {
	cfg := loadshed.Default()
	cfg.Interval = 5 * time.Millisecond
	cfg.Origin.ScopeConfig = loadshed.ScopeConfig{K: 1, Controller: loadshed.ControllerConfig{Mode: loadshed.ModeProportional}}
	cfg.Origin.Signals = loadshed.OriginSignals{Inflight: loadshed.SignalConfig{Enabled: true, Threshold: 100, Max: 200}}
	sh, err := loadshed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	cutoff := originCutoff(sh)
	if c, ok := cutoff("east"); !ok || c != 100 {
		t.Fatalf("idle origin: %v %v", c, ok)
	}
	o := sh.Origin("east")
	for range 180 { // x = 0.8: cutoff 100 * (1 - 0.8^3) = 48.8
		o.Begin()
	}
	deadline := time.Now().Add(10 * time.Second)
	for c, _ := cutoff("east"); c > 49; c, _ = cutoff("east") {
		if time.Now().After(deadline) {
			t.Fatalf("cutoff still %v", c)
		}
		time.Sleep(5 * time.Millisecond) // the shedder's ticker moves it
	}
	cfg.Origin.DryRun = true
	if err := sh.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if c, _ := cutoff("east"); c != 100 {
		t.Errorf("dry-run scope reports cutoff %v, want 100", c)
	}
}

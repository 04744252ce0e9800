package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/config"
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

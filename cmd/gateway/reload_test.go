package main

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/proxy"
)

const reloadBefore = `
server: {listen: "127.0.0.1:0"}
admin: {listen: ""}
access_log: {enabled: false}
origins:
  a:
    instances: [{address: "127.0.0.1:9"}]
loadshed:
  interval: 100ms
rate_limit:
  policies: [{name: p1, rate: 10, burst: 10, key: [client_ip]}]
routes:
  - {name: a, match: {path_prefix: /a}, origin: a, filters: [{name: rate_limit, options: {policy: p1}}]}
`

const reloadAfter = `
server: {listen: "127.0.0.1:0"}
admin: {listen: ""}
access_log: {enabled: false}
origins:
  a:
    instances: [{address: "127.0.0.1:9"}]
  b:
    instances: [{address: "127.0.0.1:10"}]
loadshed:
  interval: 250ms
rate_limit:
  policies: [{name: p2, rate: 5, burst: 5, key: [client_ip]}]
routes:
  - {name: b, match: {path_prefix: /b}, origin: b, filters: [{name: rate_limit, options: {policy: p2}}]}
`

func startApp(t *testing.T) *app {
	a, _ := startAppWith(t, reloadBefore)
	return a
}

// startAppWith wires an app from configText as main does (runtime, first
// snapshot, activation), without listening; it returns the parsed config
// too.
func startAppWith(t testing.TB, configText string) (*app, *config.Config) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, err := config.ParseWithEnv([]byte(configText), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := newRuntime(logger, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.close)
	a := &app{logger: logger, rt: rt}
	snap, err := rt.build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.activate(cfg, func() { a.server = proxy.NewServer(rt.builder, snap, logger) }); err != nil {
		t.Fatal(err)
	}
	return a, cfg
}

// TestReloadFailingLateChangesNothing: a reload whose config builds (routes,
// chains, filters) and passes every check but one, the last, leaves the
// snapshot, origins, shedding and rate limits exactly as they were; the
// same reload without the failing step applies all of them.
func TestReloadFailingLateChangesNothing(t *testing.T) {
	a := startApp(t)
	before := a.server.Snapshot()
	after, err := config.ParseWithEnv([]byte(reloadAfter), "after.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	a.rt.extraChanges = []change{{key: "late", check: func() error { return errors.New("refused at the last step") }, apply: func() error { return nil }}}
	err = a.apply(after)
	if err == nil || !strings.Contains(err.Error(), "late: refused at the last step") {
		t.Fatalf("apply = %v", err)
	}
	if a.server.Snapshot() != before {
		t.Error("the snapshot changed")
	}
	if got := a.rt.origins.Names(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("origins %v changed", got)
	}
	if got := a.rt.shedder.Config().Interval; got != 100*time.Millisecond {
		t.Errorf("loadshed.interval %v changed", got)
	}
	if got := a.rt.limiters.Names(); !slices.Equal(got, []string{"p1"}) {
		t.Errorf("rate-limit policies %v changed", got)
	}

	a.rt.extraChanges = nil
	if err := a.apply(after); err != nil {
		t.Fatal(err)
	}
	if snap := a.server.Snapshot(); snap == before || snap.Config.Routes[0].Name != "b" {
		t.Error("the snapshot was not swapped")
	}
	if got := a.rt.origins.Names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("origins %v", got)
	}
	if got := a.rt.shedder.Config().Interval; got != 250*time.Millisecond {
		t.Errorf("loadshed.interval %v", got)
	}
	if got := a.rt.limiters.Names(); !slices.Equal(got, []string{"p2"}) {
		t.Errorf("rate-limit policies %v", got)
	}
}

// TestReloadFailingBuildChangesNothing: a config whose chains do not build
// (an unknown filter) is refused before anything is checked or applied.
func TestReloadFailingBuildChangesNothing(t *testing.T) {
	a := startApp(t)
	before := a.server.Snapshot()
	bad := strings.Replace(reloadAfter, "{name: rate_limit, options: {policy: p2}}", "{name: no_such_filter}", 1)
	cfg, err := config.ParseWithEnv([]byte(bad), "bad.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.apply(cfg); err == nil || !strings.Contains(err.Error(), `routes[0].filters[0].name: unknown filter "no_such_filter"`) {
		t.Fatalf("apply = %v", err)
	}
	if a.server.Snapshot() != before || !slices.Equal(a.rt.origins.Names(), []string{"a"}) || !slices.Equal(a.rt.limiters.Names(), []string{"p1"}) {
		t.Error("a config that failed to build changed the running state")
	}
}

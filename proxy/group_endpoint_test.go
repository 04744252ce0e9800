package proxy

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
)

// A group route: built-ins installed on routes with an origin see the
// group's name and, per request, its active origin; an unknown group is a
// build error at its key path.
func TestOriginGroupRouteBuildsAndNamesItsActiveOrigin(t *testing.T) {
	cfg := parse(t, `
origins:
  east: {instances: [{address: "127.0.0.1:9001"}]}
  west: {instances: [{address: "127.0.0.1:9002"}]}
origin_groups:
  - {name: api, origins: [east, west]}
routes:
  - {name: a, match: {path: /a}, origin_group: API}
`)
	r := filters.NewRegistry()
	filters.RegisterEndpointIn(r, "origin_group", func() string { return "" }, newGroupEndpoint)
	type none struct{}
	var seen *filters.Route
	filters.RegisterBuiltinIn(r, "per_origin", filters.EachRouteWithOrigin(), func() none { return none{} },
		func(env *filters.Env, _ none) (filters.Filter, error) {
			seen = env.Route
			return &marker{Base: filters.NewBase("per_origin", filters.Inbound, 2)}, nil
		})
	b := NewBuilder(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Registry = r
	failedOver := make(chan string, 1)
	reg, err := origins.NewRegistry(cfg.Origins, origins.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hooks: origins.Hooks{OnFailover: func(_, _, to, _ string) { failedOver <- to }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(); b.Close() })
	OriginsKey.Provide(b.Services, reg)
	if _, err := b.Build(cfg); err != nil {
		t.Fatal(err)
	}
	if seen == nil || seen.Origin != "api" || seen.ActiveOrigin == nil || seen.ActiveOrigin() != "east" {
		t.Fatalf("route seen by the per-origin built-in: %+v", seen)
	}
	// The group's active origin, as the registry judges it.
	if err := reg.SetGroups(cfg.OriginGroups); err != nil {
		t.Fatal(err)
	}
	east, _ := reg.Get("east")
	east.SetInstances(nil)
	if to := <-failedOver; to != "west" {
		t.Fatalf("failed over to %s", to)
	}
	if got := seen.ActiveOrigin(); got != "west" {
		t.Errorf("active origin %q after east lost its instances", got)
	}

	cfg.Routes[0].Endpoint = map[string]any{"origin_group": "ghost"}
	_, err = b.Build(cfg)
	if want := `routes[0].origin_group: unknown origin group "ghost" (defined: api)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}

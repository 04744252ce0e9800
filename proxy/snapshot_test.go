package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
)

// testBuilder builds snapshots with a registry holding the proxy's own
// endpoint kinds and two test built-ins: "everywhere" (every chain) and
// "per_origin" (one per route with an origin).
func testBuilder(t *testing.T, cfg *config.Config) *Builder {
	t.Helper()
	r := filters.NewRegistry()
	filters.RegisterEndpointIn(r, "origin", func() string { return "" }, newForwardEndpoint)
	filters.RegisterEndpointIn(r, "static", func() StaticOptions { return StaticOptions{Status: http.StatusOK} }, newStaticEndpoint)
	type none struct{}
	filters.RegisterBuiltinIn(r, "everywhere", filters.EveryChain(), func() none { return none{} },
		func(*filters.Env, none) (filters.Filter, error) {
			return &marker{Base: filters.NewBase("everywhere", filters.Inbound, 1)}, nil
		})
	filters.RegisterBuiltinIn(r, "per_origin", filters.EachRouteWithOrigin(), func() none { return none{} },
		func(env *filters.Env, _ none) (filters.Filter, error) {
			return &marker{Base: filters.NewBase("per_origin", filters.Inbound, 2), origin: env.Route.Origin}, nil
		})
	b := NewBuilder(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Registry = r
	reg, err := origins.NewRegistry(nil, origins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(); b.Close() })
	OriginsKey.Provide(b.Services, reg)
	return b
}

type marker struct {
	filters.Base
	origin string
}

func (*marker) Apply(*filters.Context) error { return nil }

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.ParseWithEnv([]byte(yaml), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const snapshotYAML = `
origins:
  api:
    instances: [{address: "127.0.0.1:9000"}]
routes:
  - {name: health, match: {path: /healthz}, static: {status: 204}}
  - {name: api, match: {path_prefix: /api}, origin: API}
`

func names(ch *filters.Chain) []string {
	var out []string
	for _, f := range ch.Filters() {
		out = append(out, f.Name())
	}
	return out
}

func TestBuildInstallsBuiltinsByRule(t *testing.T) {
	cfg := parse(t, snapshotYAML)
	snap, err := testBuilder(t, cfg).Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		chain *filters.Chain
		want  []string
	}{
		{snap.Chains[0], []string{"everywhere", "static"}},
		{snap.Chains[1], []string{"everywhere", "per_origin", "proxy"}},
		{snap.NoRoute, []string{"everywhere", "no_route"}},
	} {
		if got := names(tc.chain); !slices.Equal(got, tc.want) {
			t.Errorf("chain %v, want %v", got, tc.want)
		}
	}
	// One shared instance of an every-chain built-in; the per-route one
	// knows its route's origin (names are case-insensitive).
	if snap.Chains[0].Filters()[0] != snap.NoRoute.Filters()[0] {
		t.Error("every-chain built-in built more than once")
	}
	if m := snap.Chains[1].Filters()[1].(*marker); m.origin != "api" {
		t.Errorf("per-route built-in sees origin %q", m.origin)
	}

	cfg = parse(t, snapshotYAML+"per_origin: {enabled: false}\n")
	snap, err = testBuilder(t, cfg).Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(snap.Chains[1]); !slices.Equal(got, []string{"everywhere", "proxy"}) {
		t.Errorf("disabled built-in still installed: %v", got)
	}
}

func TestBuildErrorsNameKeyPaths(t *testing.T) {
	cfg := parse(t, `
origins:
  api:
    instances: [{address: "127.0.0.1:9000"}]
routes:
  - {name: a, match: {path: /a}, static: {status: 99, headers: [{name: X, value: "a\r\nb"}]}}
  - {name: b, match: {path: /b}, origin: ghost}
  - {name: c, match: {path: /c}, statik: {}}
  - {name: d, match: {path: /d}, static: {stauts: 200}}
everywhere: {options: {x: 1}}
acess_log: {enabled: false}
`)
	_, err := testBuilder(t, cfg).Build(cfg)
	if err == nil {
		t.Fatal("built")
	}
	for _, want := range []string{
		"routes[0].static.status: must be an HTTP status 100..599, got 99",
		"routes[0].static.headers[0]: invalid header",
		`routes[1].origin: unknown origin "ghost" (defined: api)`,
		`routes[2].statik: unknown key or endpoint kind "statik" (endpoint kinds: origin, static)`,
		"routes[3].static.stauts: unknown key",
		"everywhere.options.x: unknown key",
		"acess_log: unknown config section or built-in filter (built-in filters: everywhere, per_origin)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "everywhere.options.x"); n != 1 {
		t.Errorf("a built-in's bad option reported %d times", n)
	}
}

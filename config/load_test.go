package config

import (
	"errors"
	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/origins"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/routing"
)

func TestParseEmbeddedDefault(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatalf("embedded default does not load: %v", err)
	}
	if cfg.Source != EmbeddedSource {
		t.Errorf("Source = %q", cfg.Source)
	}
	s := cfg.Server
	if s.Listen != ":8080" || s.MaxBodySize != 64<<20 || s.MaxHeaderSize != 16<<10 ||
		s.ReadHeaderTimeout != 10*time.Second || s.EscapedSlashes != routing.RejectEscapedSlashes || s.Via != "floodgate" {
		t.Errorf("server = %+v", s)
	}
	if cfg.Admin.Listen != "127.0.0.1:9901" {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	if len(cfg.Routes) != 3 || cfg.Routes[0].Name != "health" || cfg.Routes[1].Endpoint["origin"] != "demo" ||
		cfg.Routes[2].Endpoint["timeseries"] == nil || len(cfg.TimeSeries.Store.Namespaces["demo"].Index.FieldMapping) != 5 {
		t.Fatalf("routes = %+v", cfg.Routes)
	}
	if kind, st, _ := cfg.Routes[0].EndpointKind(); kind != "static" || st.(map[string]any)["status"] != 200 || st.(map[string]any)["body"] != "ok" {
		t.Errorf("health route endpoint = %s %+v", kind, st)
	}
	demo, ok := cfg.Origins["demo"]
	if !ok || len(demo.Instances) != 1 || demo.Timeouts.Connect != time.Second || demo.Timeouts.Response != 10*time.Second {
		t.Errorf("demo origin = %+v", demo)
	}

	// DefaultYAML hands out a copy, so no caller can change what Load uses.
	b := DefaultYAML()
	b[0] = '!'
	if DefaultYAML()[0] == '!' {
		t.Error("DefaultYAML returned the embedded slice itself")
	}
}

func TestLoadFullFile(t *testing.T) {
	path := filepath.Join("testdata", "full.yaml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != path {
		t.Errorf("Source = %q", cfg.Source)
	}
	s := cfg.Server
	if s.MaxHeaderSize != 32<<10 || s.MaxBodySize != 8<<20 || s.MaxConnections != 2000 || s.EscapedSlashes != routing.DecodeEscapedSlashes ||
		len(s.TrustedProxies) != 2 || s.Via != "edge" || s.DrainTimeout != 5*time.Second {
		t.Errorf("server = %+v", s)
	}

	// Origin names are case-insensitive: "Users" is stored as "users" (the
	// origin endpoint kind lower-cases the route's reference too).
	users, ok := cfg.Origins["users"]
	if !ok {
		t.Fatalf("origins = %v", cfg.Origins)
	}
	// Defaults fill what the file left out, and only that.
	def := origins.DefaultOriginConfig()
	if users.Timeouts.Connect != 500*time.Millisecond || users.Timeouts.Response != def.Timeouts.Response ||
		users.MaxConnsPerInstance != 64 || users.IdleConnTimeout != def.IdleConnTimeout || users.Breaker != def.Breaker {
		t.Errorf("users origin = %+v", users)
	}
	if users.Instances[0].Weight != 3 || users.Instances[1].Weight != 0 {
		t.Errorf("weights = %+v", users.Instances)
	}
	assets := cfg.Origins["static-assets"]
	if assets.MaxConnsPerInstance != def.MaxConnsPerInstance || assets.IdleConnTimeout != 10*time.Second || assets.Timeouts.Response != 2*time.Minute {
		t.Errorf("assets origin = %+v", assets)
	}

	r := cfg.Routes[0]
	if r.Match.PathPrefix != "/users" || len(r.Match.Hosts) != 2 || len(r.Match.Methods) != 2 ||
		len(r.Match.Headers) != 1 || r.Match.Headers[0].Name != "X-Tenant" || r.Rewrite.AddPrefix != "/v2/users" ||
		!r.Idempotent || len(r.Filters) != 1 || r.Filters[0].Options["rate"] != 10 {
		t.Errorf("route = %+v", r)
	}
	rt := users.Timeouts.Override(r.Timeouts)
	if rt.Connect != 500*time.Millisecond || rt.Response != 3*time.Second {
		t.Errorf("route timeouts = %+v, want the origin's connect and the route's response", rt)
	}
	st, _ := cfg.Routes[2].Endpoint["static"].(map[string]any)
	if st == nil || st["status"] != 418 {
		t.Errorf("static = %+v", st)
	}
	if len(cfg.Filters) != 1 || cfg.Filters[0].Options["header"] != "X-Request-Id" {
		t.Errorf("filters = %+v", cfg.Filters)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "reading config") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRejectsBadYAML(t *testing.T) {
	_, err := Parse([]byte("server: [unclosed"), "bad.yaml")
	if err == nil || !strings.Contains(err.Error(), "bad.yaml: parsing YAML") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRejectsUnknownKeys(t *testing.T) {
	yaml := `
server:
  lsiten: ":8080"
routes:
  - name: a
    match: {pth: /x}
    static: {}
`
	_, err := Parse([]byte(yaml), "typo.yaml")
	if err == nil {
		t.Fatal("typos accepted")
	}
	msg := err.Error()
	for _, want := range []string{"typo.yaml", "server.lsiten: unknown key", "routes[0].match.pth: unknown key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func TestParseBareNumberDuration(t *testing.T) {
	_, err := Parse([]byte("server:\n  read_header_timeout: 5\n"), "f.yaml")
	if err == nil || !strings.Contains(err.Error(), "server.read_header_timeout: duration 5 needs a unit") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseMinimalFillsDefaults(t *testing.T) {
	cfg, err := Parse([]byte("routes:\n  - name: r\n    static: {body: hi}\n"), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.Server.Listen != def.Server.Listen || cfg.Server.MaxBodySize != def.Server.MaxBodySize || cfg.Admin.Listen != def.Admin.Listen {
		t.Errorf("server %+v admin %+v", cfg.Server, cfg.Admin)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("FLOODGATE_SERVER_LISTEN", "127.0.0.1:9090")
	t.Setenv("FLOODGATE_SERVER_MAX_BODY_SIZE", "1MiB")
	t.Setenv("FLOODGATE_SERVER_READ_HEADER_TIMEOUT", "3s")
	t.Setenv("FLOODGATE_SERVER_MAX_CONNECTIONS", "500")
	t.Setenv("FLOODGATE_SERVER_ESCAPED_SLASHES", "keep")
	t.Setenv("FLOODGATE_ADMIN_TOKEN", "tok")
	cfg, err := Parse(DefaultYAML(), EmbeddedSource)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server
	if s.Listen != "127.0.0.1:9090" || s.MaxBodySize != 1<<20 || s.ReadHeaderTimeout != 3*time.Second ||
		s.MaxConnections != 500 || s.EscapedSlashes != routing.KeepEscapedSlashes {
		t.Errorf("server = %+v", s)
	}
	if cfg.Admin.Token != "tok" {
		t.Errorf("admin token = %q", cfg.Admin.Token)
	}
	// The file's other values survive.
	if s.BodyTimeout != 5*time.Minute || len(cfg.Routes) != 3 {
		t.Errorf("file values lost: %+v", cfg)
	}
}

func TestEnvOverrideKeyMissingFromFile(t *testing.T) {
	t.Setenv("FLOODGATE_SERVER_VIA", "edge-1")
	cfg, err := Parse([]byte("routes: []\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Via != "edge-1" {
		t.Errorf("via = %q", cfg.Server.Via)
	}
}

func TestEnvOverrideIsValidated(t *testing.T) {
	t.Setenv("FLOODGATE_SERVER_LISTEN", "8080")
	t.Setenv("FLOODGATE_SERVER_MAX_BODY_SIZE", "lots")
	_, err := Parse(DefaultYAML(), EmbeddedSource)
	if err == nil || !strings.Contains(err.Error(), "max_body_size") || !strings.Contains(err.Error(), `"lots"`) {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("FLOODGATE_SERVER_MAX_BODY_SIZE", "")
	_, err = Parse(DefaultYAML(), EmbeddedSource)
	if err == nil || !strings.Contains(err.Error(), `server.listen: want [host]:port, got "8080"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestEnvKeys(t *testing.T) {
	keys := decode.EnvKeys(reflect.TypeFor[Config]())
	want := map[string]bool{"server.listen": false, "server.max_body_size": false, "server.read_header_timeout": false, "admin.token": false}
	for _, k := range keys {
		if _, ok := want[k]; ok {
			want[k] = true
		}
		if strings.HasPrefix(k, "routes") || strings.HasPrefix(k, "origins") || k == "source" {
			t.Errorf("envKeys lists %q, which an environment variable can't address", k)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("envKeys misses %q", k)
		}
	}
}

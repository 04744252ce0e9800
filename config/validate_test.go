package config

import (
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/routing"
	"github.com/floodgate-dev/floodgate/shadow"
)

// validConfig is a small config that passes validation; each case breaks
// one rule.
func validConfig() *Config {
	c := Default()
	api := origins.DefaultOriginConfig()
	api.Instances = []origins.InstanceConfig{{Address: "127.0.0.1:9000"}}
	c.Origins = map[string]origins.OriginConfig{"api": api}
	c.Routes = []Route{
		{Name: "health", Match: routing.Match{Path: "/healthz"}, Endpoint: map[string]any{"static": map[string]any{"status": 200}}},
		{Name: "api", Match: routing.Match{PathPrefix: "/api"}, Endpoint: map[string]any{"origin": "api"}},
	}
	return c
}

func withInstances(in ...origins.InstanceConfig) origins.OriginConfig {
	o := origins.DefaultOriginConfig()
	o.Instances = in
	return o
}

func TestValidateAcceptsValid(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := validConfig()
	c.Admin.Listen = "[::1]:9901"
	c.Server.TrustedProxies = []string{"10.0.0.0/8", "::1/128"}
	if err := c.Validate(); err != nil {
		t.Fatalf("ipv6 loopback admin and CIDRs: %v", err)
	}
	c.Admin = Admin{Listen: "0.0.0.0:9901", Token: "t"}
	if err := c.Validate(); err != nil {
		t.Fatalf("public admin with token: %v", err)
	}
	c.Admin = Admin{}
	if err := c.Validate(); err != nil {
		t.Fatalf("admin disabled: %v", err)
	}
}

func TestValidateNamesKeyPaths(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"listen without port", func(c *Config) { c.Server.Listen = "8080" }, `server.listen: want [host]:port, got "8080"`},
		{"empty listen", func(c *Config) { c.Server.Listen = "" }, "server.listen:"},
		{"zero body timeout", func(c *Config) { c.Server.BodyTimeout = 0 }, "server.body_timeout: must be greater than zero"},
		{"negative max body", func(c *Config) { c.Server.MaxBodySize = -1 }, "server.max_body_size: must be greater than zero"},
		{"negative connections", func(c *Config) { c.Server.MaxConnections = -1 }, "server.max_connections: must not be negative (0 means automatic)"},
		{"negative connections per ip", func(c *Config) { c.Server.MaxConnectionsPerIP = -1 }, "server.max_connections_per_ip: must not be negative"},
		{"path parameters", func(c *Config) { c.Server.PathParameters = "drop" }, `server.path_parameters: must be one of reject, keep, strip; got "drop"`},
		{"negative write timeout", func(c *Config) { c.Server.WriteTimeout = -time.Second }, "server.write_timeout: must not be negative"},
		{"header size too small", func(c *Config) { c.Server.MaxHeaderSize = 100 }, "server.max_header_size: must be between 1KiB and 1MiB, got 100"},
		{"header size too big", func(c *Config) { c.Server.MaxHeaderSize = 2 << 20 }, "server.max_header_size: must be between 1KiB and 1MiB, got 2MiB"},
		{"escaped slashes", func(c *Config) { c.Server.EscapedSlashes = "allow" }, `server.escaped_slashes: must be one of reject, keep, decode; got "allow"`},
		{"trusted proxy CIDR", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.1/33"} }, `server.trusted_proxies[1]: invalid CIDR "10.0.0.1/33"`},
		{"via with comma", func(c *Config) { c.Server.Via = "a, b" }, "server.via: must be a single token"},
		{"admin listen", func(c *Config) { c.Admin.Listen = "localhost" }, "admin.listen: want [host]:port"},
		{"admin public without token", func(c *Config) { c.Admin.Listen = "0.0.0.0:9901" }, `admin.listen: "0.0.0.0:9901" is not a loopback address: set admin.token`},
		{"admin all interfaces without token", func(c *Config) { c.Admin.Listen = ":9901" }, "set admin.token"},
		{"origin name", func(c *Config) { c.Origins["Bad Name"] = c.Origins["api"] }, "origins.Bad Name: origin names may use only"},
		{"origin without instances", func(c *Config) { c.Origins["api"] = origins.DefaultOriginConfig() }, "origins.api.instances: at least one instance is required"},
		{"instance address", func(c *Config) {
			c.Origins["x"] = withInstances(origins.InstanceConfig{Address: "10.0.0.1"})
		}, `origins.x.instances[0].address: must be host:port, got "10.0.0.1"`},
		{"instance empty port", func(c *Config) {
			c.Origins["x"] = withInstances(origins.InstanceConfig{Address: "a:1"}, origins.InstanceConfig{Address: "a:"})
		}, `origins.x.instances[1].address: bad port in "a:"`},
		{"instance weight", func(c *Config) {
			c.Origins["x"] = withInstances(origins.InstanceConfig{Address: "a:1", Weight: -1})
		}, "origins.x.instances[0].weight: must be between 0 and 10000, got -1"},
		{"origin timeouts", func(c *Config) {
			o := c.Origins["api"]
			o.Timeouts.Connect = -1
			c.Origins["api"] = o
		}, "origins.api.timeouts.connect: must be positive"},
		{"origin max conns", func(c *Config) {
			o := c.Origins["api"]
			o.MaxConnsPerInstance = -1
			c.Origins["api"] = o
		}, "origins.api.max_conns_per_instance: must be positive"},
		{"two endpoints", func(c *Config) { c.Routes[1].Endpoint["static"] = map[string]any{} }, "routes[1]: set one endpoint; got origin, static"},
		{"no endpoint", func(c *Config) { c.Routes[1].Endpoint = nil }, "routes[1]: an endpoint is required"},
		{"route timeouts", func(c *Config) { c.Routes[1].Timeouts.Response = -1 }, "routes[1].timeouts: must not be negative"},
		{"route filter name", func(c *Config) { c.Routes[1].Filters = []FilterSpec{{Name: "a"}, {}} }, "routes[1].filters[1].name: required"},
		{"global filter name", func(c *Config) { c.Filters = []FilterSpec{{}} }, "filters[0].name: required"},
		{"tunnel idle timeout", func(c *Config) { c.Server.Tunnel.IdleTimeout = 0 }, "server.tunnel.idle_timeout: must be greater than zero"},
		{"tunnel max lifetime", func(c *Config) { c.Server.Tunnel.MaxLifetime = -time.Second }, "server.tunnel.max_lifetime: must not be negative (0 means no limit)"},
		{"websocket on a static route", func(c *Config) { on := true; c.Routes[0].WebSocket = &on }, "routes[0].websocket: only a route with an origin or origin_group endpoint carries WebSocket tunnels (this one is static)"},
		{"route regex", func(c *Config) { c.Routes[1].Match = routing.Match{PathRegex: "("} }, "routes[1].match.path_regex:"},
		{"duplicate route name", func(c *Config) { c.Routes[1].Name = "health" }, `routes[1].name: "health" already used by routes[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("accepted, want %q", tt.want)
			}
			ve, ok := AsValidationError(err)
			if !ok {
				t.Fatalf("error %T is not a *ValidationError", err)
			}
			found := false
			for _, p := range ve.Problems {
				if strings.Contains(p, tt.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("problems %q do not include %q", ve.Problems, tt.want)
			}
		})
	}
}

func TestValidateReportsAllProblemsTogether(t *testing.T) {
	yaml := `
server:
  listen: "nope"
  escaped_slashes: sometimes
  trusted_proxies: ["300.0.0.0/8"]
admin:
  listen: "0.0.0.0:9901"
origins:
  x:
    instances:
      - address: "no-port"
routes:
  - name: a
    match: {path: /a}
    origin: x
  - name: b
    match: {path: /b}
    origin: missing
  - name: c
    match: {path: /c}
    static: {status: 1000}
`
	_, err := Parse([]byte(yaml), "many.yaml")
	ve, ok := AsValidationError(err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"server.listen:",
		"server.escaped_slashes:",
		"server.trusted_proxies[0]:",
		"admin.listen:",
		"origins.x.instances[0].address:",
	}
	for _, w := range want {
		found := false
		for _, p := range ve.Problems {
			found = found || strings.HasPrefix(p, w)
		}
		if !found {
			t.Errorf("problems do not include %q:\n%s", w, err)
		}
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(ve.Problems), len(want), err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "many.yaml: invalid config:\n  ") || strings.Count(msg, "\n  ") != len(ve.Problems) {
		t.Errorf("message is not one problem a line: %q", msg)
	}
	// The same file always reports the same problems in the same order.
	for i := 0; i < 10; i++ {
		if _, again := Parse([]byte(yaml), "many.yaml"); again.Error() != msg {
			t.Fatalf("report changed between runs:\n%s\n---\n%s", msg, again)
		}
	}
}

func TestValidationErrorSingleProblem(t *testing.T) {
	e := &ValidationError{Problems: []string{"server.listen: bad"}}
	if e.Error() != "invalid config: server.listen: bad" {
		t.Fatalf("%q", e.Error())
	}
	if _, ok := AsValidationError(nil); ok {
		t.Fatal("nil is not a validation error")
	}
}

func TestIsLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9901": true, "127.0.0.2:1": true, "[::1]:9901": true, "localhost:9901": true,
		":9901": false, "0.0.0.0:9901": false, "10.0.0.1:9901": false, "[::]:1": false, "example.com:1": false, "garbage": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestValidateShadowAndExperiments(t *testing.T) {
	c := validConfig()
	c.Routes[1].Shadow = &shadow.Config{Origin: "API", Fraction: 0.5}
	if err := c.Validate(); err != nil {
		t.Fatalf("a valid shadow: %v", err)
	}
	c.Routes[1].Shadow = &shadow.Config{Origin: "nope", Fraction: 2}
	c.Routes[0].Shadow = &shadow.Config{Origin: "api", Fraction: 0.1}
	c.LoadShed.Chaos.Experiments = []loadshed.ExperimentConfig{{Name: "e", Key: "client_ip", Fraction: 0.1,
		Origin: "missing", Action: loadshed.ActionShed, Duration: time.Minute}}
	err := c.Validate()
	for _, want := range []string{
		"routes[1].shadow.fraction: must be in (0, 1]",
		`routes[1].shadow.origin: unknown origin "nope"`,
		"routes[0].shadow: only a route with an origin or origin_group endpoint can shadow its requests, this one is static",
		`loadshed.chaos.experiments[0].origin: unknown origin "missing"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

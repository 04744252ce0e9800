package config

import (
	"time"

	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/ratelimit"
	"github.com/floodgate-dev/floodgate/routing"
	"github.com/floodgate-dev/floodgate/shadow"
	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// ByteSize is a size in bytes written in human units ("4MiB"); see
// decode.ByteSize.
type ByteSize = decode.ByteSize

// Config is the whole gateway configuration. Its mapstructure tags are the
// YAML keys; each section is decoded by the package that owns it (see
// sections in load.go) with the decode toolkit.
type Config struct {
	Server  Server       `mapstructure:"server"`
	Admin   Admin        `mapstructure:"admin"`
	Filters []FilterSpec `mapstructure:"filters"`
	Routes  []Route      `mapstructure:"routes"`
	// Origins are decoded one by one over origins.DefaultOriginConfig(), so
	// keys an origin omits keep their defaults.
	Origins map[string]origins.OriginConfig `mapstructure:"origins"`
	// OriginGroups are ordered lists of origins with failover; a route
	// sends to one with "origin_group: NAME". Each is decoded over
	// origins.DefaultGroupConfig().
	OriginGroups []origins.GroupConfig `mapstructure:"origin_groups"`
	// LoadShed is decoded over loadshed.Default().
	LoadShed loadshed.Config `mapstructure:"loadshed"`
	// RateLimit holds the named token-bucket policies the rate_limit filter
	// applies.
	RateLimit ratelimit.Config `mapstructure:"rate_limit"`
	// TimeSeries configures the embedded TimeSeries event store that
	// routes with a timeseries endpoint serve.
	TimeSeries TimeSeries `mapstructure:"timeseries"`
	// Builtins are the sections of built-in filters, keyed by the filter's
	// name (access_log, request_id, ...): every top-level key that is not
	// one of the sections above. Each switches its filter off or passes it
	// options; a key naming no built-in filter is rejected when the
	// gateway builds the config.
	Builtins map[string]BuiltinFilter `mapstructure:",remain"`

	// Source says where the config came from ("embedded default" or a file
	// path); it is not read from YAML.
	Source string `mapstructure:"-"`
}

// Builtin returns the section of the built-in filter name (zero: enabled,
// default options).
func (c *Config) Builtin(name string) BuiltinFilter { return c.Builtins[name] }

// Server is the client-facing listener. Listen needs a restart to change;
// everything else applies on reload to new connections.
type Server struct {
	Listen string `mapstructure:"listen"`
	// ReadHeaderTimeout bounds how long a client may take to send the
	// request line and headers (slowloris protection) and how long an idle
	// keep-alive connection waits for its next request to start.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	// BodyTimeout bounds how long a client may take to send the whole body.
	BodyTimeout time.Duration `mapstructure:"body_timeout"`
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// WriteTimeout bounds writing one response; 0 means none, which long
	// downloads and server-sent event streams need.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// MaxHeaderSize is the largest request line plus headers; larger gets 431.
	MaxHeaderSize ByteSize `mapstructure:"max_header_size"`
	// MaxBodySize is the largest request body; larger gets 413.
	MaxBodySize ByteSize `mapstructure:"max_body_size"`
	// MaxConnections caps concurrent client connections; 0 (the default)
	// means half the process's open-file limit, at most 100000, so the
	// gateway never runs out of descriptors for its origin connections.
	MaxConnections int `mapstructure:"max_connections"`
	// MaxConnectionsPerIP caps concurrent connections from one client
	// address (0: no cap). Behind a load balancer every connection comes
	// from the balancer, so leave it 0 there.
	MaxConnectionsPerIP int `mapstructure:"max_connections_per_ip"`
	// WriteProgressTimeout cuts a client that accepts no response bytes for
	// this long, releasing the origin connection its response holds; a
	// slow download or an idle event stream is not cut (0: never).
	WriteProgressTimeout time.Duration `mapstructure:"write_progress_timeout"`
	// DrainTimeout is how long shutdown waits for in-flight requests.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
	// LameDuck is how long the listener keeps accepting after shutdown
	// starts (with /readyz already 503), so load balancers stop sending
	// before connections are refused. 0 stops accepting at once.
	LameDuck time.Duration `mapstructure:"lame_duck"`
	// EscapedSlashes is what to do with %2F and %5C in paths: reject, keep
	// or decode.
	EscapedSlashes routing.EscapedSlashes `mapstructure:"escaped_slashes"`
	// PathParameters is what to do with ";" path parameters: reject, keep
	// or strip (before matching).
	PathParameters routing.PathParameters `mapstructure:"path_parameters"`
	// TrustedProxies are CIDRs whose X-Forwarded-* headers are extended;
	// from anyone else they are replaced, so clients cannot spoof them.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// Tunnel bounds WebSocket tunnels (reloadable; a tunnel keeps the
	// bounds it opened with).
	Tunnel Tunnel `mapstructure:"tunnel"`
	// Via is the pseudonym the gateway adds to the Via header.
	Via string `mapstructure:"via"`
	// TLS terminates TLS on the listener when it lists certificates
	// (SNI, mTLS, reload, the https redirect listener, HSTS).
	TLS tlsconf.ServerConfig `mapstructure:"tls"`
}

// Tunnel bounds the life of a WebSocket tunnel once its handshake is done.
type Tunnel struct {
	// IdleTimeout closes a tunnel that carried no byte in either direction
	// for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxLifetime closes a tunnel this long after it opened, busy or not;
	// 0 means no limit.
	MaxLifetime time.Duration `mapstructure:"max_lifetime"`
}

// Admin is the operator listener (metrics, admin API). It binds loopback
// by default.
type Admin struct {
	Listen string `mapstructure:"listen"`
	Token  string `mapstructure:"token"`
}

// TimeSeries is the embedded event store: where it keeps its data and its
// namespaces (the rest of the section, decoded by the timeseries package).
type TimeSeries struct {
	// DataDir holds the store's files; changing it needs a restart.
	DataDir string `mapstructure:"data_dir"`
	// Store is everything else in the section: namespaces, read_fanout,
	// retention_interval.
	Store timeseries.Config `mapstructure:",squash"`
}

// BuiltinFilter switches a built-in, always-installed filter on or off and
// passes it options (decoded and validated by the filter itself, so errors
// read e.g. "access_log.options.sample_successes: ...").
type BuiltinFilter struct {
	Enabled *bool          `mapstructure:"enabled"`
	Options map[string]any `mapstructure:"options"`
}

// On reports whether the filter is enabled (the default).
func (b BuiltinFilter) On() bool { return b.Enabled == nil || *b.Enabled }

// FilterSpec is one filter instance: a registered name and its options.
type FilterSpec struct {
	Name    string         `mapstructure:"name"`
	Options map[string]any `mapstructure:"options"`
}

// Route is one route: how to match, how to rewrite, and its endpoint.
type Route struct {
	Name    string          `mapstructure:"name"`
	Match   routing.Match   `mapstructure:"match"`
	Rewrite routing.Rewrite `mapstructure:"rewrite"`
	// Timeouts override the origin's for this route.
	Timeouts origins.TimeoutsConfig `mapstructure:"timeouts"`
	// Idempotent declares non-idempotent methods on this route safe to
	// retry (e.g. a POST search endpoint).
	Idempotent bool         `mapstructure:"idempotent"`
	Filters    []FilterSpec `mapstructure:"filters"`
	// WebSocket turns WebSocket handshakes on this route off (false) or on
	// (true, the default for an origin route; other endpoint kinds carry
	// none). A refused handshake gets 501 upgrade_refused.
	WebSocket *bool `mapstructure:"websocket"`
	// Shadow mirrors a fraction of the route's requests to another origin
	// (origin and origin_group routes); nil: no shadowing.
	Shadow *shadow.Config `mapstructure:"shadow"`
	// Endpoint holds the route's other keys: exactly one, naming a
	// registered endpoint kind (origin, static, timeseries, ...), whose
	// value the kind decodes ("origin: users", "static: {status: 204}").
	Endpoint map[string]any `mapstructure:",remain"`
}

// WebSocketAllowed reports whether the route accepts WebSocket handshakes
// (its endpoint kind permitting): unless websocket is set to false.
func (r *Route) WebSocketAllowed() bool { return r.WebSocket == nil || *r.WebSocket }

// CarriesWebSocket reports whether an endpoint kind can tunnel WebSocket:
// the kinds that forward to origins.
func CarriesWebSocket(kind string) bool { return kind == "origin" || kind == "origin_group" }

// EndpointKind returns the route's endpoint kind and its options as
// written; ok is false unless exactly one is set.
func (r *Route) EndpointKind() (kind string, options any, ok bool) {
	if len(r.Endpoint) != 1 {
		return "", nil, false
	}
	for k, v := range r.Endpoint {
		kind, options = k, v
	}
	return kind, options, true
}

// Default returns the values every config starts from before the YAML and
// environment are applied.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:               ":8080",
			ReadHeaderTimeout:    10 * time.Second,
			BodyTimeout:          5 * time.Minute,
			IdleTimeout:          90 * time.Second,
			MaxHeaderSize:        16 << 10,
			MaxBodySize:          64 << 20,
			DrainTimeout:         30 * time.Second,
			EscapedSlashes:       routing.RejectEscapedSlashes,
			PathParameters:       routing.RejectPathParameters,
			WriteProgressTimeout: time.Minute,
			Via:                  "floodgate",
			TLS:                  tlsconf.DefaultServerConfig(),
			Tunnel:               Tunnel{IdleTimeout: 5 * time.Minute},
		},
		Admin:    Admin{Listen: "127.0.0.1:9901"},
		LoadShed: loadshed.Default(),
	}
}

package config

import (
	"time"

	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/ratelimit"
	"github.com/floodgate-dev/floodgate/routing"
	"github.com/floodgate-dev/floodgate/timeseries"
)

// ByteSize is a size in bytes written in human units ("4MiB"); see
// decode.ByteSize.
type ByteSize = decode.ByteSize

// Config is the whole gateway configuration.
type Config struct {
	Server  Server       `mapstructure:"server" json:"server"`
	Admin   Admin        `mapstructure:"admin" json:"admin"`
	Filters []FilterSpec `mapstructure:"filters" json:"filters,omitempty"`
	Routes  []Route      `mapstructure:"routes" json:"routes"`
	// Origins are decoded one by one over origins.DefaultOriginConfig() (see
	// Parse), so keys an origin omits keep their defaults.
	Origins map[string]origins.OriginConfig `mapstructure:"-" json:"origins"`
	// OriginsRaw is the origins section as read, before that decoding.
	OriginsRaw map[string]any `mapstructure:"origins" json:"-"`

	// LoadShed is decoded over loadshed.Default() (see Parse) from
	// LoadShedRaw, so omitted keys keep their defaults.
	LoadShed    loadshed.Config `mapstructure:"-" json:"loadshed"`
	LoadShedRaw map[string]any  `mapstructure:"loadshed" json:"-"`

	// RateLimit holds the named token-bucket policies the rate_limit filter
	// applies.
	RateLimit ratelimit.Config `mapstructure:"rate_limit" json:"rate_limit"`
	// TimeSeries configures the embedded TimeSeries event store that
	// routes with a timeseries endpoint serve.
	TimeSeries TimeSeries `mapstructure:"timeseries" json:"timeseries"`

	// AccessLog and RequestID configure filters the gateway installs on
	// every chain.
	AccessLog BuiltinFilter `mapstructure:"access_log" json:"access_log"`
	RequestID BuiltinFilter `mapstructure:"request_id" json:"request_id"`

	// Source says where the config came from ("embedded default" or a file
	// path); it is not read from YAML.
	Source string `mapstructure:"-" json:"source"`
}

// Server is the client-facing listener. Listen needs a restart to change;
// everything else applies on reload to new connections.
type Server struct {
	Listen string `mapstructure:"listen" json:"listen"`
	// ReadHeaderTimeout bounds how long a client may take to send the
	// request line and headers (slowloris protection) and how long an idle
	// keep-alive connection waits for its next request to start.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" json:"read_header_timeout"`
	// BodyTimeout bounds how long a client may take to send the whole body.
	BodyTimeout time.Duration `mapstructure:"body_timeout" json:"body_timeout"`
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" json:"idle_timeout"`
	// WriteTimeout bounds writing one response; 0 means none, which long
	// downloads and server-sent event streams need.
	WriteTimeout time.Duration `mapstructure:"write_timeout" json:"write_timeout"`
	// MaxHeaderSize is the largest request line plus headers; larger gets 431.
	MaxHeaderSize ByteSize `mapstructure:"max_header_size" json:"max_header_size"`
	// MaxBodySize is the largest request body; larger gets 413.
	MaxBodySize ByteSize `mapstructure:"max_body_size" json:"max_body_size"`
	// MaxConnections caps concurrent client connections.
	MaxConnections int `mapstructure:"max_connections" json:"max_connections"`
	// DrainTimeout is how long shutdown waits for in-flight requests.
	DrainTimeout time.Duration `mapstructure:"drain_timeout" json:"drain_timeout"`
	// EscapedSlashes is what to do with %2F and %5C in paths: reject, keep
	// or decode.
	EscapedSlashes routing.EscapedSlashes `mapstructure:"escaped_slashes" json:"escaped_slashes"`
	// TrustedProxies are CIDRs whose X-Forwarded-* headers are extended;
	// from anyone else they are replaced, so clients cannot spoof them.
	TrustedProxies []string `mapstructure:"trusted_proxies" json:"trusted_proxies,omitempty"`
	// Via is the pseudonym the gateway adds to the Via header.
	Via string `mapstructure:"via" json:"via"`
}

// Admin is the operator listener (metrics, admin API). It binds loopback
// by default.
type Admin struct {
	Listen string `mapstructure:"listen" json:"listen"`
	Token  string `mapstructure:"token" json:"token,omitempty"`
}

// TimeSeries is the embedded event store: where it keeps its data and its
// namespaces. The store's own section is decoded from the YAML as written
// (see Parse) because namespace and index field names are case-sensitive
// and viper lower-cases map keys.
type TimeSeries struct {
	// DataDir holds the store's files; changing it needs a restart.
	DataDir string `mapstructure:"data_dir" json:"data_dir"`
	// Store is everything else in the section: namespaces, read_fanout,
	// retention_interval.
	Store timeseries.Config `mapstructure:"-" json:"store"`
	// rest collects the section's other keys for the case-preserving
	// decode.
	Rest map[string]any `mapstructure:",remain" json:"-"`
}

// TimeSeriesRoute serves the embedded store: POST {route path}/{Operation}.
type TimeSeriesRoute struct {
	// Namespaces is an allowlist; empty serves every namespace.
	Namespaces []string `mapstructure:"namespaces" json:"namespaces,omitempty"`
	// MaxBodySize bounds one API call's body (default 16MiB).
	MaxBodySize ByteSize `mapstructure:"max_body_size" json:"max_body_size,omitempty"`
}

// BuiltinFilter switches a built-in, always-installed filter on or off and
// passes it options (decoded and validated by the filter itself, so errors
// read e.g. "access_log.options.sample_successes: ...").
type BuiltinFilter struct {
	Enabled *bool          `mapstructure:"enabled" json:"enabled,omitempty"`
	Options map[string]any `mapstructure:"options" json:"options,omitempty"`
}

// On reports whether the filter is enabled (the default).
func (b BuiltinFilter) On() bool { return b.Enabled == nil || *b.Enabled }

// FilterSpec is one filter instance: a registered name and its options.
type FilterSpec struct {
	Name    string         `mapstructure:"name" json:"name"`
	Options map[string]any `mapstructure:"options" json:"options,omitempty"`
}

// Route is one route: how to match, how to rewrite, and its endpoint
// (exactly one of Origin, Static and TimeSeries).
type Route struct {
	Name    string          `mapstructure:"name" json:"name"`
	Match   routing.Match   `mapstructure:"match" json:"match"`
	Rewrite routing.Rewrite `mapstructure:"rewrite" json:"rewrite"`
	// Origin proxies to the named origin.
	Origin string `mapstructure:"origin" json:"origin,omitempty"`
	// Static answers with a fixed response.
	Static *Static `mapstructure:"static" json:"static,omitempty"`
	// TimeSeries serves the embedded TimeSeries store's API.
	TimeSeries *TimeSeriesRoute `mapstructure:"timeseries" json:"timeseries,omitempty"`
	// Timeouts override the origin's for this route.
	Timeouts Timeouts `mapstructure:"timeouts" json:"timeouts"`
	// Idempotent declares non-idempotent methods on this route safe to
	// retry (e.g. a POST search endpoint).
	Idempotent bool         `mapstructure:"idempotent" json:"idempotent,omitempty"`
	Filters    []FilterSpec `mapstructure:"filters" json:"filters,omitempty"`
}

// Static is a fixed response.
type Static struct {
	Status  int      `mapstructure:"status" json:"status"`
	Body    string   `mapstructure:"body" json:"body,omitempty"`
	Headers []Header `mapstructure:"headers" json:"headers,omitempty"`
}

// Header is a name/value pair; a list keeps the header name's case, which
// a YAML map read through viper would not.
type Header struct {
	Name  string `mapstructure:"name" json:"name"`
	Value string `mapstructure:"value" json:"value"`
}

// Timeouts for talking to an origin. Connect bounds establishing a TCP
// connection; Response bounds waiting for the response headers and then
// each read of the body, so a long download or event stream that keeps
// moving is never cut, while a stalled one is.
type Timeouts struct {
	Connect  time.Duration `mapstructure:"connect" json:"connect,omitempty"`
	Response time.Duration `mapstructure:"response" json:"response,omitempty"`
}

// Default returns the values every config starts from before the YAML and
// environment are applied.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:            ":8080",
			ReadHeaderTimeout: 10 * time.Second,
			BodyTimeout:       5 * time.Minute,
			IdleTimeout:       90 * time.Second,
			MaxHeaderSize:     16 << 10,
			MaxBodySize:       64 << 20,
			MaxConnections:    100000,
			DrainTimeout:      30 * time.Second,
			EscapedSlashes:    routing.RejectEscapedSlashes,
			Via:               "floodgate",
		},
		Admin:    Admin{Listen: "127.0.0.1:9901"},
		LoadShed: loadshed.Default(),
	}
}

func (c *Config) applyDefaults() {
	for i := range c.Routes {
		if s := c.Routes[i].Static; s != nil && s.Status == 0 {
			s.Status = 200
		}
	}
}

// RouteTimeouts returns the effective timeouts of route r: its own where
// set, else its origin's.
func (c *Config) RouteTimeouts(r *Route) Timeouts {
	ot := c.Origins[r.Origin].Timeouts
	t := Timeouts{Connect: ot.Connect, Response: ot.Response}
	if r.Timeouts.Connect > 0 {
		t.Connect = r.Timeouts.Connect
	}
	if r.Timeouts.Response > 0 {
		t.Response = r.Timeouts.Response
	}
	return t
}

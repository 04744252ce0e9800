package config

import (
	"github.com/floodgate-dev/floodgate/trust"

	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/routing"
)

// ValidationError lists every rule a config breaks, each naming its key
// path; it is the decode toolkit's one error-list type.
type ValidationError = decode.Errors

// Validate checks the config's rules, every problem with its key path.
// Rules that need the runtime (filter and endpoint kinds, their options)
// are checked when the gateway builds a snapshot from the config, with the
// same key-path style.
func (c *Config) Validate() error {
	var p decode.Errors
	s := c.Server
	checkListen(&p, "server.listen", s.Listen)
	positive := map[string]int64{
		"server.read_header_timeout": int64(s.ReadHeaderTimeout),
		"server.body_timeout":        int64(s.BodyTimeout),
		"server.idle_timeout":        int64(s.IdleTimeout),
		"server.max_header_size":     int64(s.MaxHeaderSize),
		"server.max_body_size":       int64(s.MaxBodySize),
		"server.drain_timeout":       int64(s.DrainTimeout),
		"server.tunnel.idle_timeout": int64(s.Tunnel.IdleTimeout),
	}
	for _, k := range slices.Sorted(maps.Keys(positive)) {
		if positive[k] <= 0 {
			p.Add(k, "must be greater than zero")
		}
	}
	if s.LameDuck < 0 {
		p.Add("server.lame_duck", "must not be negative (0 means none)")
	}
	if s.WriteTimeout < 0 {
		p.Add("server.write_timeout", "must not be negative (0 means none)")
	}
	if s.MaxHeaderSize > 0 && (s.MaxHeaderSize < 1<<10 || s.MaxHeaderSize > 1<<20) {
		p.Add("server.max_header_size", "must be between 1KiB and 1MiB, got %s", s.MaxHeaderSize)
	}
	if s.MaxConnections < 0 {
		p.Add("server.max_connections", "must not be negative (0 means automatic)")
	}
	if s.MaxConnectionsPerIP < 0 {
		p.Add("server.max_connections_per_ip", "must not be negative (0 means no cap)")
	}
	if s.Tunnel.MaxLifetime < 0 {
		p.Add("server.tunnel.max_lifetime", "must not be negative (0 means no limit)")
	}
	if s.WriteProgressTimeout < 0 {
		p.Add("server.write_progress_timeout", "must not be negative (0 means none)")
	}
	switch s.PathParameters {
	case routing.RejectPathParameters, routing.KeepPathParameters, routing.StripPathParameters:
	default:
		p.Add("server.path_parameters", "must be one of reject, keep, strip; got %q", s.PathParameters)
	}
	switch s.EscapedSlashes {
	case routing.RejectEscapedSlashes, routing.KeepEscapedSlashes, routing.DecodeEscapedSlashes:
	default:
		p.Add("server.escaped_slashes", "must be one of reject, keep, decode; got %q", s.EscapedSlashes)
	}
	trust.Validate("server.trusted_proxies", s.TrustedProxies, func(key, msg string) { p.Add(key, "%s", msg) })
	p.Merge("server.tls", s.TLS.Validate(s.Listen))
	if strings.ContainsAny(s.Via, "\r\n,") {
		p.Add("server.via", "must be a single token")
	}
	if c.Admin.Listen != "" {
		checkListen(&p, "admin.listen", c.Admin.Listen)
		if !isLoopbackListen(c.Admin.Listen) && c.Admin.Token == "" {
			p.Add("admin.listen", "%q is not a loopback address: set admin.token to expose the admin API beyond this host", c.Admin.Listen)
		}
	}
	p.Merge("origins", origins.ValidateOrigins(c.Origins))
	p.Merge("origin_groups", origins.ValidateGroups(c.OriginGroups, c.Origins))

	specs := make([]routing.Spec, 0, len(c.Routes))
	for i := range c.Routes {
		r := &c.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		specs = append(specs, routing.Spec{Name: r.Name, Match: r.Match, Rewrite: r.Rewrite})
		switch n := len(r.Endpoint); {
		case n == 0:
			p.Add(at, "an endpoint is required: set one endpoint kind (origin, static, timeseries, ...)")
		case n > 1:
			p.Add(at, "set one endpoint; got %s (or a key is misspelt)", strings.Join(slices.Sorted(maps.Keys(r.Endpoint)), ", "))
		}
		if kind, _, ok := r.EndpointKind(); ok && !CarriesWebSocket(kind) && r.WebSocket != nil && *r.WebSocket {
			p.Add(at+".websocket", "only a route with an origin or origin_group endpoint carries WebSocket tunnels (this one is %s)", kind)
		}
		if r.Timeouts.Connect < 0 || r.Timeouts.Response < 0 {
			p.Add(at+".timeouts", "must not be negative")
		}
		for j, f := range r.Filters {
			if f.Name == "" {
				p.Add(fmt.Sprintf("%s.filters[%d].name", at, j), "required")
			}
		}
		if r.Shadow != nil {
			validateShadow(&p, at+".shadow", r, c.Origins)
		}
	}
	if _, err := routing.Compile(specs); err != nil {
		p.Merge("", err)
	}
	p.Merge("loadshed", c.LoadShed.Validate())
	for i, e := range c.LoadShed.Chaos.Experiments {
		if name := strings.ToLower(strings.TrimSpace(e.Origin)); name != "" {
			if _, ok := c.Origins[name]; !ok {
				p.Add(fmt.Sprintf("loadshed.chaos.experiments[%d].origin", i), "unknown origin %q (defined: %s)", name, strings.Join(slices.Sorted(maps.Keys(c.Origins)), ", "))
			}
		}
	}
	p.Merge("rate_limit", c.RateLimit.Validate())
	for j, f := range c.Filters {
		if f.Name == "" {
			p.Add(fmt.Sprintf("filters[%d].name", j), "required")
		}
	}
	if len(c.TimeSeries.Store.Namespaces) > 0 && c.TimeSeries.DataDir == "" {
		p.Add("timeseries.data_dir", "required when namespaces are configured")
	}
	return p.Err()
}

// validateShadow checks a route's shadow: its own keys, an origin that
// exists, and an endpoint that proxies (only forwarded requests are
// mirrored: origin and origin_group routes).
func validateShadow(p *decode.Errors, at string, r *Route, defined map[string]origins.OriginConfig) {
	p.Merge(at, r.Shadow.Validate())
	if kind, _, ok := r.EndpointKind(); ok && kind != "origin" && kind != "origin_group" {
		p.Add(at, "only a route with an origin or origin_group endpoint can shadow its requests, this one is %s", kind)
	}
	if name := strings.ToLower(strings.TrimSpace(r.Shadow.Origin)); name != "" {
		if _, ok := defined[name]; !ok {
			p.Add(at+".origin", "unknown origin %q (defined: %s)", name, strings.Join(slices.Sorted(maps.Keys(defined)), ", "))
		}
	}
}

func checkListen(p *decode.Errors, path, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.Add(path, "want [host]:port, got %q", addr)
	}
}

func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// IsLoopbackListen reports whether addr binds only a loopback interface.
func IsLoopbackListen(addr string) bool { return isLoopbackListen(addr) }

// AsValidationError returns the problems of a validation error, if err is one.
func AsValidationError(err error) (*ValidationError, bool) {
	var ve *ValidationError
	ok := errors.As(err, &ve)
	return ve, ok
}

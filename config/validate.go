package config

import (
	"errors"
	"fmt"
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

type problems []string

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

// Validate checks the config's schema-level rules. Rules that need the
// runtime (filter names and options) are checked when the gateway builds a
// snapshot from the config, with the same key-path style.
func (c *Config) Validate() error {
	var p problems
	s := c.Server
	checkListen(&p, "server.listen", s.Listen)
	positive := map[string]int64{
		"server.read_header_timeout": int64(s.ReadHeaderTimeout),
		"server.body_timeout":        int64(s.BodyTimeout),
		"server.idle_timeout":        int64(s.IdleTimeout),
		"server.max_header_size":     int64(s.MaxHeaderSize),
		"server.max_body_size":       int64(s.MaxBodySize),
		"server.max_connections":     int64(s.MaxConnections),
		"server.drain_timeout":       int64(s.DrainTimeout),
	}
	for _, k := range sortedKeys(positive) {
		if positive[k] <= 0 {
			p.add(k, "must be greater than zero")
		}
	}
	if s.WriteTimeout < 0 {
		p.add("server.write_timeout", "must not be negative (0 means none)")
	}
	if s.MaxHeaderSize > 0 && (s.MaxHeaderSize < 1<<10 || s.MaxHeaderSize > 1<<20) {
		p.add("server.max_header_size", "must be between 1KiB and 1MiB, got %s", s.MaxHeaderSize)
	}
	switch s.EscapedSlashes {
	case routing.RejectEscapedSlashes, routing.KeepEscapedSlashes, routing.DecodeEscapedSlashes:
	default:
		p.add("server.escaped_slashes", "must be one of reject, keep, decode; got %q", s.EscapedSlashes)
	}
	for i, cidr := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "invalid CIDR %q", cidr)
		}
	}
	if strings.ContainsAny(s.Via, "\r\n,") {
		p.add("server.via", "must be a single token")
	}
	if c.Admin.Listen != "" {
		checkListen(&p, "admin.listen", c.Admin.Listen)
		if !isLoopbackListen(c.Admin.Listen) && c.Admin.Token == "" {
			p.add("admin.listen", "%q is not a loopback address: set admin.token to expose the admin API beyond this host", c.Admin.Listen)
		}
	}

	for _, name := range sortedKeys(c.Origins) {
		if !validName(name) {
			p.add("origins."+name, "origin names may use only a-z, 0-9, '-' and '_'")
		}
	}
	if err := origins.ValidateOrigins(c.Origins); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			p = append(p, "origins."+line)
		}
	}

	specs := make([]routing.Spec, 0, len(c.Routes))
	for i, r := range c.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		specs = append(specs, routing.Spec{Name: r.Name, Match: r.Match, Rewrite: r.Rewrite})
		endpoints := 0
		for _, set := range []bool{r.Origin != "", r.Static != nil, r.TimeSeries != nil} {
			if set {
				endpoints++
			}
		}
		switch {
		case endpoints > 1:
			p.add(at, "set one endpoint: origin, static or timeseries")
		case endpoints == 0:
			p.add(at, "an endpoint is required: set origin, static or timeseries")
		case r.Origin != "":
			if _, ok := c.Origins[r.Origin]; !ok {
				p.add(at+".origin", "unknown origin %q (defined: %s)", r.Origin, strings.Join(sortedKeys(c.Origins), ", "))
			}
		case r.Static != nil:
			if r.Static.Status < 100 || r.Static.Status > 599 {
				p.add(at+".static.status", "must be an HTTP status 100..599, got %d", r.Static.Status)
			}
			for j, h := range r.Static.Headers {
				if h.Name == "" || strings.ContainsAny(h.Name+h.Value, "\r\n") {
					p.add(fmt.Sprintf("%s.static.headers[%d]", at, j), "invalid header")
				}
			}
		case r.TimeSeries != nil:
			if len(c.TimeSeries.Store.Namespaces) == 0 {
				p.add(at+".timeseries", "the timeseries section defines no namespaces to serve")
			}
			for j, ns := range r.TimeSeries.Namespaces {
				if _, ok := c.TimeSeries.Store.Namespaces[ns]; !ok {
					p.add(fmt.Sprintf("%s.timeseries.namespaces[%d]", at, j), "unknown namespace %q", ns)
				}
			}
			if r.TimeSeries.MaxBodySize < 0 {
				p.add(at+".timeseries.max_body_size", "must not be negative")
			}
		}
		if r.Timeouts.Connect < 0 || r.Timeouts.Response < 0 {
			p.add(at+".timeouts", "must not be negative")
		}
		for j, f := range r.Filters {
			if f.Name == "" {
				p.add(fmt.Sprintf("%s.filters[%d].name", at, j), "required")
			}
		}
	}
	if _, err := routing.Compile(specs); err != nil {
		p = append(p, err.Error())
	}
	if err := c.LoadShed.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			p = append(p, "loadshed."+line)
		}
	}
	if err := c.RateLimit.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			p = append(p, "rate_limit."+line)
		}
	}
	for j, f := range c.Filters {
		if f.Name == "" {
			p.add(fmt.Sprintf("filters[%d].name", j), "required")
		}
	}
	if len(c.TimeSeries.Store.Namespaces) > 0 && c.TimeSeries.DataDir == "" {
		p.add("timeseries.data_dir", "required when namespaces are configured")
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func checkListen(p *problems, path, addr string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		p.add(path, "want [host]:port, got %q", addr)
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

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// AsValidationError returns the problems of a validation error, if err is one.
func AsValidationError(err error) (*ValidationError, bool) {
	var ve *ValidationError
	ok := errors.As(err, &ve)
	return ve, ok
}

package routing

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Match is a route's request predicate; every non-empty part must hold.
// At most one of Path, PathPrefix and PathRegex may be set.
type Match struct {
	// Hosts are exact ("api.example.com") or wildcard ("*.example.com",
	// which matches any subdomain but not the apex; "*" matches any host).
	Hosts []string `mapstructure:"hosts" json:"hosts,omitempty"`
	// Path matches exactly.
	Path string `mapstructure:"path" json:"path,omitempty"`
	// PathPrefix matches whole segments: "/api" matches "/api" and
	// "/api/users" but not "/apikeys".
	PathPrefix string `mapstructure:"path_prefix" json:"path_prefix,omitempty"`
	// PathRegex must match the whole normalized path (RE2 syntax, linear
	// time, so a route can't be turned into a ReDoS).
	PathRegex string   `mapstructure:"path_regex" json:"path_regex,omitempty"`
	Methods   []string `mapstructure:"methods" json:"methods,omitempty"`
	Headers   []Header `mapstructure:"headers" json:"headers,omitempty"`
}

// Header matches one request header by name (case-insensitive). With
// neither Value nor Regex set it only requires the header to be present;
// Absent inverts that.
type Header struct {
	Name   string `mapstructure:"name" json:"name"`
	Value  string `mapstructure:"value" json:"value,omitempty"`
	Regex  string `mapstructure:"regex" json:"regex,omitempty"`
	Absent bool   `mapstructure:"absent" json:"absent,omitempty"`
}

// Rewrite changes what is sent upstream. StripPrefix and ReplacePath are
// exclusive; AddPrefix applies after StripPrefix.
type Rewrite struct {
	StripPrefix string `mapstructure:"strip_prefix" json:"strip_prefix,omitempty"`
	AddPrefix   string `mapstructure:"add_prefix" json:"add_prefix,omitempty"`
	ReplacePath string `mapstructure:"replace_path" json:"replace_path,omitempty"`
	// Host replaces the Host header sent upstream.
	Host string `mapstructure:"host" json:"host,omitempty"`
}

// Spec is one route as declared.
type Spec struct {
	Name    string
	Match   Match
	Rewrite Rewrite
}

// Route is a compiled route.
type Route struct {
	Name string
	// Index is the route's position in the table, for callers that keep
	// per-route state in a parallel slice.
	Index   int
	Rewrite Rewrite

	anyHost    bool
	exactHosts []string
	wildHosts  []string // stored with the leading "*" removed: ".example.com"
	path       string
	prefix     string
	regex      *regexp.Regexp
	methods    []string
	headers    []compiledHeader
}

type compiledHeader struct {
	name   string
	value  string
	regex  *regexp.Regexp
	absent bool
}

// HeaderSource reads request headers by case-insensitive name.
type HeaderSource interface {
	Header(name string) (string, bool)
}

// Table is an immutable, ordered list of routes.
type Table struct {
	routes []*Route
}

// Compile validates and compiles specs in order. Errors name the route by
// index and field, e.g. "routes[3].match.path_regex: ...".
func Compile(specs []Spec) (*Table, error) {
	t := &Table{routes: make([]*Route, 0, len(specs))}
	names := map[string]int{}
	for i, s := range specs {
		at := fmt.Sprintf("routes[%d]", i)
		if s.Name == "" {
			return nil, fmt.Errorf("%s.name: required", at)
		}
		if j, dup := names[s.Name]; dup {
			return nil, fmt.Errorf("%s.name: %q already used by routes[%d]", at, s.Name, j)
		}
		names[s.Name] = i
		r, err := compileRoute(s, at)
		if err != nil {
			return nil, err
		}
		r.Index = i
		t.routes = append(t.routes, r)
	}
	return t, nil
}

func compileRoute(s Spec, at string) (*Route, error) {
	r := &Route{Name: s.Name, Rewrite: s.Rewrite}
	m := s.Match
	set := 0
	for _, p := range []string{m.Path, m.PathPrefix, m.PathRegex} {
		if p != "" {
			set++
		}
	}
	if set > 1 {
		return nil, fmt.Errorf("%s.match: set only one of path, path_prefix and path_regex", at)
	}
	for _, h := range m.Hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "*":
			r.anyHost = true
		case strings.HasPrefix(h, "*.") && len(h) > 2 && validHostPattern(h[2:]):
			r.wildHosts = append(r.wildHosts, h[1:])
		case !validHostPattern(h):
			// A port would never match: requests are matched on the host
			// with its port removed, so reject it rather than ignore the route.
			return nil, fmt.Errorf("%s.match.hosts: invalid host %q (want name, *.suffix or *, without a port)", at, h)
		default:
			r.exactHosts = append(r.exactHosts, h)
		}
	}
	if len(m.Hosts) == 0 {
		r.anyHost = true
	}
	if m.Path != "" {
		if !strings.HasPrefix(m.Path, "/") {
			return nil, fmt.Errorf("%s.match.path: must start with /", at)
		}
		if err := checkNormalized(m.Path); err != nil {
			return nil, fmt.Errorf("%s.match.path: %v", at, err)
		}
		r.path = m.Path
	}
	if m.PathPrefix != "" {
		if !strings.HasPrefix(m.PathPrefix, "/") {
			return nil, fmt.Errorf("%s.match.path_prefix: must start with /", at)
		}
		if err := checkNormalized(m.PathPrefix); err != nil {
			return nil, fmt.Errorf("%s.match.path_prefix: %v", at, err)
		}
		r.prefix = strings.TrimRight(m.PathPrefix, "/")
		if r.prefix == "" {
			r.prefix = "/"
		}
	}
	if m.PathRegex != "" {
		re, err := regexp.Compile("^(?:" + m.PathRegex + ")$")
		if err != nil {
			return nil, fmt.Errorf("%s.match.path_regex: %v", at, err)
		}
		r.regex = re
	}
	for _, meth := range m.Methods {
		meth = strings.TrimSpace(meth)
		if meth == "" || strings.ToUpper(meth) != meth {
			return nil, fmt.Errorf("%s.match.methods: %q must be an upper-case method token", at, meth)
		}
		r.methods = append(r.methods, meth)
	}
	for j, h := range m.Headers {
		hat := fmt.Sprintf("%s.match.headers[%d]", at, j)
		if h.Name == "" {
			return nil, fmt.Errorf("%s.name: required", hat)
		}
		if h.Value != "" && h.Regex != "" {
			return nil, fmt.Errorf("%s: set value or regex, not both", hat)
		}
		if h.Absent && (h.Value != "" || h.Regex != "") {
			return nil, fmt.Errorf("%s.absent: cannot be combined with value or regex", hat)
		}
		ch := compiledHeader{name: h.Name, value: h.Value, absent: h.Absent}
		if h.Regex != "" {
			re, err := regexp.Compile("^(?:" + h.Regex + ")$")
			if err != nil {
				return nil, fmt.Errorf("%s.regex: %v", hat, err)
			}
			ch.regex = re
		}
		r.headers = append(r.headers, ch)
	}
	rw := s.Rewrite
	if rw.StripPrefix != "" && rw.ReplacePath != "" {
		return nil, fmt.Errorf("%s.rewrite: set strip_prefix or replace_path, not both", at)
	}
	// A slice, not a map, so the reported field is the same on every run.
	for _, f := range []struct{ field, v string }{{"strip_prefix", rw.StripPrefix}, {"add_prefix", rw.AddPrefix}, {"replace_path", rw.ReplacePath}} {
		if f.v != "" && !strings.HasPrefix(f.v, "/") {
			return nil, fmt.Errorf("%s.rewrite.%s: must start with /", at, f.field)
		}
	}
	if rw.StripPrefix != "" {
		if err := checkNormalized(rw.StripPrefix); err != nil {
			return nil, fmt.Errorf("%s.rewrite.strip_prefix: %v", at, err)
		}
	}
	if rw.Host != "" && strings.ContainsAny(rw.Host, " /\r\n") {
		return nil, fmt.Errorf("%s.rewrite.host: invalid host %q", at, rw.Host)
	}
	return r, nil
}

// Routes returns the compiled routes in declared order.
func (t *Table) Routes() []*Route { return t.routes }

// Match returns the first route, in declared order, that matches; nil if
// none does. host may carry a port; path must be normalized; a nil h means
// the request has no headers.
func (t *Table) Match(host, method, path string, h HeaderSource) *Route {
	host = canonicalHost(host)
	for _, r := range t.routes {
		if r.matches(host, method, path, h) {
			return r
		}
	}
	return nil
}

func (r *Route) matches(host, method, path string, h HeaderSource) bool {
	if !r.hostMatches(host) {
		return false
	}
	if len(r.methods) > 0 && !slices.Contains(r.methods, method) {
		return false
	}
	switch {
	case r.path != "":
		if path != r.path {
			return false
		}
	case r.prefix != "":
		if !HasSegmentPrefix(path, r.prefix) {
			return false
		}
	case r.regex != nil:
		if !r.regex.MatchString(path) {
			return false
		}
	}
	for _, hm := range r.headers {
		var v string
		var ok bool
		if h != nil {
			v, ok = h.Header(hm.name)
		}
		switch {
		case hm.absent:
			if ok {
				return false
			}
		case !ok:
			return false
		case hm.regex != nil:
			if !hm.regex.MatchString(v) {
				return false
			}
		case hm.value != "":
			if v != hm.value {
				return false
			}
		}
	}
	return true
}

func (r *Route) hostMatches(host string) bool {
	if r.anyHost {
		return true
	}
	for _, h := range r.exactHosts {
		if h == host {
			return true
		}
	}
	for _, suffix := range r.wildHosts {
		if len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}

// HasSegmentPrefix reports whether path starts with prefix on a segment
// boundary. prefix has no trailing slash (except the root "/").
func HasSegmentPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// checkNormalized rejects a configured path that no request can ever
// match: requests are matched on their normalized path, so "/a//b" or
// "/%7Eu" in a route would silently never apply.
func checkNormalized(p string) error {
	n, err := NormalizePath(p, KeepEscapedSlashes)
	if err != nil {
		return err
	}
	if n != p {
		return fmt.Errorf("%q is not in normalized form, which requests are matched on; write %q", p, n)
	}
	return nil
}

// validHostPattern reports whether h (lower-cased) is a host as matched: no
// wildcard left, no port, nothing a Host header can't carry.
func validHostPattern(h string) bool {
	return h != "" && !strings.ContainsAny(h, "*/ ") && canonicalHost(h) == h
}

// canonicalHost lower-cases host and drops a port and the trailing dot of
// a fully qualified name ("example.com." is the same host), keeping IPv6
// brackets.
func canonicalHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(host)
		}
	}
	return host
}

// Apply returns the path to send upstream for a request that matched r.
func (r *Route) Apply(path string) string {
	rw := r.Rewrite
	switch {
	case rw.ReplacePath != "":
		path = rw.ReplacePath
	case rw.StripPrefix != "":
		prefix := strings.TrimRight(rw.StripPrefix, "/")
		if prefix != "" && HasSegmentPrefix(path, prefix) {
			path = path[len(prefix):]
			if path == "" {
				path = "/"
			}
		}
	}
	if rw.AddPrefix != "" {
		path = strings.TrimRight(rw.AddPrefix, "/") + path
	}
	return path
}

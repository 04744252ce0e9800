package routing

import (
	"strings"
	"testing"
)

// headers is a HeaderSource with case-insensitive names, like the gateway's
// adapter over fasthttp's request header.
type headers map[string]string

func (h headers) Header(name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func mustCompile(t *testing.T, specs ...Spec) *Table {
	t.Helper()
	tab, err := Compile(specs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

func matchName(tab *Table, host, method, path string, h HeaderSource) string {
	if r := tab.Match(host, method, path, h); r != nil {
		return r.Name
	}
	return ""
}

func TestMatchHosts(t *testing.T) {
	tab := mustCompile(t,
		Spec{Name: "exact", Match: Match{Hosts: []string{"API.Example.com"}}},
		Spec{Name: "wild", Match: Match{Hosts: []string{"*.example.com"}}},
		Spec{Name: "v6", Match: Match{Hosts: []string{"[::1]"}}},
		Spec{Name: "other", Match: Match{Hosts: []string{"other.test", "  second.test "}}},
	)
	tests := []struct{ host, want string }{
		{"api.example.com", "exact"},
		{"API.EXAMPLE.COM", "exact"},
		{"api.example.com:8080", "exact"},
		{"Api.Example.Com:443", "exact"},
		{"www.example.com", "wild"},
		{"a.b.example.com", "wild"},
		{"WWW.Example.COM:8443", "wild"},
		{"api.example.com.", "exact"},   // fully qualified form
		{"www.example.com.:80", "wild"}, // with a port too
		{"example.com.", ""},
		{"example.com", ""},      // apex is not a subdomain
		{"example.com:80", ""},   // nor with a port
		{".example.com", ""},     // empty label
		{"badexample.com", ""},   // suffix must be on a label boundary
		{"example.com.evil", ""}, // suffix, not substring
		{"[::1]:8080", "v6"},
		{"[::1]", "v6"},
		{"other.test", "other"},
		{"second.test:1", "other"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := matchName(tab, tt.host, "GET", "/", nil); got != tt.want {
			t.Errorf("host %q matched %q, want %q", tt.host, got, tt.want)
		}
	}

	any := mustCompile(t,
		Spec{Name: "star", Match: Match{Hosts: []string{"*"}}},
	)
	if got := matchName(any, "whatever.test:9", "GET", "/", nil); got != "star" {
		t.Errorf("* did not match: %q", got)
	}
	none := mustCompile(t, Spec{Name: "nohosts"})
	if got := matchName(none, "", "GET", "/", nil); got != "nohosts" {
		t.Errorf("route without hosts should match any host, got %q", got)
	}
}

func TestMatchPaths(t *testing.T) {
	tab := mustCompile(t,
		Spec{Name: "exact", Match: Match{Path: "/healthz"}},
		Spec{Name: "prefix", Match: Match{PathPrefix: "/api"}},
		Spec{Name: "prefix-slash", Match: Match{PathPrefix: "/static/"}},
		Spec{Name: "regex", Match: Match{PathRegex: `/users/[0-9]+`}},
		Spec{Name: "alt-regex", Match: Match{PathRegex: `/a|/b`}},
	)
	tests := []struct{ path, want string }{
		{"/healthz", "exact"},
		{"/healthz/", ""},
		{"/healthzz", ""},
		{"/api", "prefix"},
		{"/api/", "prefix"},
		{"/api/users", "prefix"},
		{"/apikeys", ""},
		{"/static", "prefix-slash"},
		{"/static/app.js", "prefix-slash"},
		{"/staticky", ""},
		{"/users/42", "regex"},
		{"/users/42/edit", ""}, // regex must match the whole path
		{"/x/users/42", ""},
		{"/users/", ""},
		{"/a", "alt-regex"}, // alternation is grouped before anchoring
		{"/b", "alt-regex"},
		{"/a/x", ""},
		{"/xb", ""},
	}
	for _, tt := range tests {
		if got := matchName(tab, "h", "GET", tt.path, nil); got != tt.want {
			t.Errorf("path %q matched %q, want %q", tt.path, got, tt.want)
		}
	}

	root := mustCompile(t, Spec{Name: "root", Match: Match{PathPrefix: "/"}})
	for _, p := range []string{"/", "/x", "/x/y/"} {
		if got := matchName(root, "h", "GET", p, nil); got != "root" {
			t.Errorf("prefix / did not match %q", p)
		}
	}
}

func TestMatchMethods(t *testing.T) {
	tab := mustCompile(t,
		Spec{Name: "read", Match: Match{Methods: []string{"GET", "HEAD"}}},
		Spec{Name: "fallback"},
	)
	for method, want := range map[string]string{"GET": "read", "HEAD": "read", "POST": "fallback", "get": "fallback"} {
		if got := matchName(tab, "h", method, "/", nil); got != want {
			t.Errorf("method %q matched %q, want %q", method, got, want)
		}
	}
}

func TestMatchHeaders(t *testing.T) {
	tab := mustCompile(t,
		Spec{Name: "value", Match: Match{Headers: []Header{{Name: "X-Env", Value: "canary"}}}},
		Spec{Name: "regex", Match: Match{Headers: []Header{{Name: "x-version", Regex: `v[23]|beta`}}}},
		Spec{Name: "present", Match: Match{Headers: []Header{{Name: "Authorization"}}}},
		Spec{Name: "absent", Match: Match{Headers: []Header{{Name: "Cookie", Absent: true}}}},
		Spec{Name: "fallback"},
	)
	tests := []struct {
		h    headers
		want string
	}{
		{headers{"x-env": "canary"}, "value"},
		{headers{"X-ENV": "canary"}, "value"},
		{headers{"X-Env": "Canary", "Cookie": "a"}, "fallback"}, // values are case-sensitive
		{headers{"X-Version": "v2", "Cookie": "a"}, "regex"},
		{headers{"X-Version": "beta", "Cookie": "a"}, "regex"},
		{headers{"X-Version": "v22", "Cookie": "a"}, "fallback"}, // full match
		{headers{"X-Version": "xbeta", "Cookie": "a"}, "fallback"},
		{headers{"authorization": "", "Cookie": "a"}, "present"}, // presence, even empty
		{headers{}, "absent"},
		{headers{"Cookie": "a"}, "fallback"},
	}
	for _, tt := range tests {
		if got := matchName(tab, "h", "GET", "/", tt.h); got != tt.want {
			t.Errorf("headers %v matched %q, want %q", tt.h, got, tt.want)
		}
	}
	// No header source means no headers, not a crash.
	if got := matchName(tab, "h", "GET", "/", nil); got != "absent" {
		t.Errorf("nil header source matched %q, want absent", got)
	}
}

func TestMatchAllPartsMustHold(t *testing.T) {
	tab := mustCompile(t, Spec{Name: "all", Match: Match{
		Hosts:      []string{"api.test"},
		PathPrefix: "/v1",
		Methods:    []string{"POST"},
		Headers:    []Header{{Name: "X-Key", Value: "k"}},
	}})
	ok := headers{"X-Key": "k"}
	if got := matchName(tab, "api.test", "POST", "/v1/x", ok); got != "all" {
		t.Fatalf("all parts hold but got %q", got)
	}
	for _, c := range []struct{ host, method, path string }{
		{"other.test", "POST", "/v1/x"},
		{"api.test", "GET", "/v1/x"},
		{"api.test", "POST", "/v2/x"},
	} {
		if got := matchName(tab, c.host, c.method, c.path, ok); got != "" {
			t.Errorf("%v matched %q", c, got)
		}
	}
	if got := matchName(tab, "api.test", "POST", "/v1/x", headers{"X-Key": "j"}); got != "" {
		t.Errorf("wrong header value matched %q", got)
	}
}

func TestMatchDeclaredOrderWins(t *testing.T) {
	tab := mustCompile(t,
		Spec{Name: "broad", Match: Match{PathPrefix: "/"}},
		Spec{Name: "specific", Match: Match{Path: "/api/users"}},
	)
	if got := matchName(tab, "h", "GET", "/api/users", nil); got != "broad" {
		t.Fatalf("got %q, want the first declared route", got)
	}
	tab = mustCompile(t,
		Spec{Name: "specific", Match: Match{Path: "/api/users"}},
		Spec{Name: "broad", Match: Match{PathPrefix: "/"}},
	)
	if got := matchName(tab, "h", "GET", "/api/users", nil); got != "specific" {
		t.Fatalf("got %q, want the first declared route", got)
	}
	routes := tab.Routes()
	if len(routes) != 2 || routes[0].Name != "specific" || routes[0].Index != 0 || routes[1].Index != 1 {
		t.Fatalf("Routes() = %+v", routes)
	}
	empty := mustCompile(t)
	if r := empty.Match("h", "GET", "/", nil); r != nil {
		t.Fatalf("empty table matched %q", r.Name)
	}
}

// TestMatchOnNormalizedPathBlocksBypass is the end-to-end property the
// gateway relies on: a request that spells /admin indirectly matches the
// /admin route, not the public one.
func TestMatchOnNormalizedPathBlocksBypass(t *testing.T) {
	tab := mustCompile(t,
		Spec{Name: "admin", Match: Match{PathPrefix: "/admin"}},
		Spec{Name: "public", Match: Match{PathPrefix: "/public"}},
	)
	for _, raw := range []string{"/public/%2e%2e/admin", "/public/%2E%2e/admin/x", "/public/../admin", "//admin", "/public/./../admin"} {
		p, err := NormalizePath(raw, RejectEscapedSlashes)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if got := matchName(tab, "h", "GET", p, nil); got != "admin" {
			t.Errorf("%q (normalized %q) matched %q, want admin", raw, p, got)
		}
	}
	p, err := NormalizePath("/public%2F..%2Fadmin", DecodeEscapedSlashes)
	if err != nil || matchName(tab, "h", "GET", p, nil) != "admin" {
		t.Errorf("decoded encoded-slash bypass: %q, %v", p, err)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"missing name", []Spec{{Name: "a"}, {}}, "routes[1].name: required"},
		{"duplicate name", []Spec{{Name: "a"}, {Name: "b"}, {Name: "a"}}, `routes[2].name: "a" already used by routes[0]`},
		{"two path kinds", []Spec{{Name: "a", Match: Match{Path: "/a", PathPrefix: "/a"}}}, "routes[0].match: set only one of"},
		{"path not absolute", []Spec{{Name: "a", Match: Match{Path: "a"}}}, "routes[0].match.path: must start with /"},
		{"prefix not absolute", []Spec{{Name: "a"}, {Name: "b", Match: Match{PathPrefix: "api"}}}, "routes[1].match.path_prefix: must start with /"},
		{"bad regex", []Spec{{Name: "a"}, {Name: "b", Match: Match{PathRegex: "/(a"}}}, "routes[1].match.path_regex: "},
		{"empty host", []Spec{{Name: "a", Match: Match{Hosts: []string{""}}}}, "routes[0].match.hosts: invalid host"},
		{"inner wildcard", []Spec{{Name: "a", Match: Match{Hosts: []string{"a.*.com"}}}}, "routes[0].match.hosts: invalid host"},
		{"double wildcard", []Spec{{Name: "a", Match: Match{Hosts: []string{"*.*.com"}}}}, "routes[0].match.hosts: invalid host"},
		{"bare wildcard dot", []Spec{{Name: "a", Match: Match{Hosts: []string{"*."}}}}, "routes[0].match.hosts: invalid host"},
		{"host with port", []Spec{{Name: "a", Match: Match{Hosts: []string{"api.test:8080"}}}}, "routes[0].match.hosts: invalid host"},
		{"path not normalized", []Spec{{Name: "a", Match: Match{Path: "/a//b"}}}, `routes[0].match.path: "/a//b" is not in normalized form, which requests are matched on; write "/a/b"`},
		{"path with dot segment", []Spec{{Name: "a", Match: Match{Path: "/a/../b"}}}, `write "/b"`},
		{"path with decodable escape", []Spec{{Name: "a", Match: Match{Path: "/%7Eu"}}}, `routes[0].match.path: "/%7Eu" is not in normalized form`},
		{"path with bad escape", []Spec{{Name: "a", Match: Match{Path: "/a%zz"}}}, "routes[0].match.path: malformed percent-encoding"},
		{"prefix not normalized", []Spec{{Name: "a", Match: Match{PathPrefix: "/api/./v1"}}}, `routes[0].match.path_prefix: "/api/./v1" is not in normalized form`},
		{"prefix lower-case escape", []Spec{{Name: "a", Match: Match{PathPrefix: "/a%3ab"}}}, `write "/a%3Ab"`},
		{"strip prefix not normalized", []Spec{{Name: "a", Rewrite: Rewrite{StripPrefix: "//api"}}}, `routes[0].rewrite.strip_prefix: "//api" is not in normalized form`},
		{"lower-case method", []Spec{{Name: "a", Match: Match{Methods: []string{"get"}}}}, "routes[0].match.methods:"},
		{"empty method", []Spec{{Name: "a", Match: Match{Methods: []string{" "}}}}, "routes[0].match.methods:"},
		{"header without name", []Spec{{Name: "a", Match: Match{Headers: []Header{{Name: "X"}, {Value: "v"}}}}}, "routes[0].match.headers[1].name: required"},
		{"header value and regex", []Spec{{Name: "a", Match: Match{Headers: []Header{{Name: "X", Value: "v", Regex: "v"}}}}}, "routes[0].match.headers[0]: set value or regex"},
		{"header absent and value", []Spec{{Name: "a", Match: Match{Headers: []Header{{Name: "X", Value: "v", Absent: true}}}}}, "routes[0].match.headers[0].absent:"},
		{"header bad regex", []Spec{{Name: "a", Match: Match{Headers: []Header{{Name: "X", Regex: "["}}}}}, "routes[0].match.headers[0].regex:"},
		{"strip and replace", []Spec{{Name: "a", Rewrite: Rewrite{StripPrefix: "/a", ReplacePath: "/b"}}}, "routes[0].rewrite: set strip_prefix or replace_path"},
		{"strip relative", []Spec{{Name: "a", Rewrite: Rewrite{StripPrefix: "a"}}}, "routes[0].rewrite.strip_prefix: must start with /"},
		{"add relative", []Spec{{Name: "a", Rewrite: Rewrite{AddPrefix: "a"}}}, "routes[0].rewrite.add_prefix: must start with /"},
		{"replace relative", []Spec{{Name: "a", Rewrite: Rewrite{ReplacePath: "a"}}}, "routes[0].rewrite.replace_path: must start with /"},
		{"host header injection", []Spec{{Name: "a", Rewrite: Rewrite{Host: "a\r\nX: y"}}}, "routes[0].rewrite.host: invalid host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Compile(tt.specs)
			if err == nil {
				t.Fatalf("compiled %d routes, want error containing %q", len(tab.Routes()), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileAcceptsNormalizedForms(t *testing.T) {
	mustCompile(t,
		Spec{Name: "trailing", Match: Match{Path: "/a/b/"}},
		Spec{Name: "escaped", Match: Match{Path: "/a%3Ab%20c"}},
		Spec{Name: "kept-slash", Match: Match{PathPrefix: "/objects/a%2Fb"}},
		Spec{Name: "strip", Match: Match{PathPrefix: "/api/"}, Rewrite: Rewrite{StripPrefix: "/api/"}},
	)
}

func TestCompileRewriteErrorIsDeterministic(t *testing.T) {
	spec := Spec{Name: "a", Rewrite: Rewrite{StripPrefix: "x", AddPrefix: "y"}}
	_, first := Compile([]Spec{spec})
	for i := 0; i < 50; i++ {
		if _, err := Compile([]Spec{spec}); err == nil || err.Error() != first.Error() {
			t.Fatalf("error changed between runs: %v vs %v", first, err)
		}
	}
}

func TestRewriteApply(t *testing.T) {
	tests := []struct {
		rw       Rewrite
		in, want string
	}{
		{Rewrite{}, "/a/b", "/a/b"},
		{Rewrite{StripPrefix: "/api"}, "/api/users", "/users"},
		{Rewrite{StripPrefix: "/api/"}, "/api/users", "/users"},
		{Rewrite{StripPrefix: "/api"}, "/api", "/"},
		{Rewrite{StripPrefix: "/api"}, "/api/", "/"},
		{Rewrite{StripPrefix: "/api"}, "/apikeys", "/apikeys"}, // segment boundary
		{Rewrite{StripPrefix: "/api"}, "/other", "/other"},
		{Rewrite{StripPrefix: "/"}, "/x", "/x"},
		{Rewrite{AddPrefix: "/v2"}, "/users", "/v2/users"},
		{Rewrite{AddPrefix: "/v2/"}, "/users", "/v2/users"},
		{Rewrite{AddPrefix: "/v2"}, "/", "/v2/"},
		{Rewrite{StripPrefix: "/api", AddPrefix: "/internal"}, "/api/users", "/internal/users"},
		{Rewrite{StripPrefix: "/api", AddPrefix: "/internal"}, "/api", "/internal/"},
		{Rewrite{ReplacePath: "/status"}, "/healthz/deep", "/status"},
		{Rewrite{ReplacePath: "/status", AddPrefix: "/v1"}, "/x", "/v1/status"},
	}
	for _, tt := range tests {
		tab := mustCompile(t, Spec{Name: "r", Rewrite: tt.rw})
		if got := tab.Routes()[0].Apply(tt.in); got != tt.want {
			t.Errorf("%+v.Apply(%q) = %q, want %q", tt.rw, tt.in, got, tt.want)
		}
	}
}

func TestHasSegmentPrefix(t *testing.T) {
	for _, c := range []struct {
		path, prefix string
		want         bool
	}{
		{"/api", "/api", true}, {"/api/x", "/api", true}, {"/apix", "/api", false},
		{"/ap", "/api", false}, {"/", "/", true}, {"/x", "/", true},
	} {
		if got := HasSegmentPrefix(c.path, c.prefix); got != c.want {
			t.Errorf("HasSegmentPrefix(%q, %q) = %v", c.path, c.prefix, got)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	specs := make([]Spec, 0, 50)
	for i := 0; i < 49; i++ {
		specs = append(specs, Spec{Name: "r" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Match: Match{PathPrefix: "/svc" + string(rune('a'+i%26)) + string(rune('a'+i/26))}})
	}
	specs = append(specs, Spec{Name: "last", Match: Match{Hosts: []string{"*.example.com"}, PathPrefix: "/api"}})
	tab, err := Compile(specs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if tab.Match("www.example.com:443", "GET", "/api/users", nil) == nil {
			b.Fatal("no match")
		}
	}
}

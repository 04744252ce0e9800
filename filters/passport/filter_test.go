package passport

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
	"github.com/floodgate-dev/floodgate/trust"
)

// upstreamEndpoint answers with whether the debug header would reach the
// origin, as the forwarder decides it.
type upstreamEndpoint struct{}

func (upstreamEndpoint) Name() string                       { return "test_upstream" }
func (upstreamEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (upstreamEndpoint) Order() int                         { return 0 }
func (upstreamEndpoint) ShouldFilter(*filters.Context) bool { return true }
func (upstreamEndpoint) Apply(c *filters.Context) error {
	forwarded := "no"
	if c.RequestHeader(DefaultRequestHeader) != nil && !c.UpstreamOwns([]byte(DefaultRequestHeader)) {
		forwarded = "yes"
	}
	c.Request.Response.Reset()
	c.Request.Response.SetBodyString(forwarded)
	c.MarkResponded(200, filters.CategorySuccess)
	return nil
}

func serve(t *testing.T, ring *Ring, opts map[string]any) string {
	return serveAs(t, ring, opts, nil)
}

// serveAs serves the passport filters; tlsNames, when set, is the verified
// client certificate every request carries.
func serveAs(t *testing.T, ring *Ring, opts map[string]any, tlsNames []string) string {
	t.Helper()
	s := &filters.Services{}
	RingKey.Provide(s, ring)
	in, err := filters.Default.Build(&filters.Env{Path: FilterName, Services: s}, FilterName, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := filters.Default.Build(&filters.Env{Path: HeaderFilterName, Services: s}, HeaderFilterName, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{in, out, upstreamEndpoint{}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	return chaintest.Serve(t, chain, chaintest.Options{Prepare: func(c *filters.Context) {
		n++
		// As the request_id filter sets it: a view of the Context's own
		// buffer, which the next request reuses.
		c.SetRequestID([]byte("req-" + string(rune('a'+n-1))))
		if tlsNames != nil {
			id := c.Identity()
			id.TLS = &trust.TLS{Names: tlsNames}
			c.SetIdentity(id)
		}
	}})
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	return getPath(t, url, "/x", header...)
}

func getPath(t *testing.T, url, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestTrustedCallerGetsThePassportUntrustedIsStripped(t *testing.T) {
	ring := NewRing()
	trusted := serve(t, ring, map[string]any{"trusted_cidrs": []any{"127.0.0.0/8"}})
	resp, body := get(t, trusted, "x-floodgate-debug", "passport")
	p := resp.Header.Get(DefaultResponseHeader)
	if !strings.Contains(p, "passport continued") || !strings.Contains(p, "test_upstream responded") {
		t.Fatalf("trusted caller's passport header %q", p)
	}
	if body != "yes" {
		t.Errorf("a trusted caller's debug header reaches the origin: %q", body)
	}
	e, ok := ring.Get("req-a")
	if !ok || e.Status != 200 || len(e.Events) < 3 {
		t.Fatalf("ring entry %+v %v", e, ok)
	}
	// Asked without the header: nothing stored, nothing returned.
	if resp, _ := get(t, trusted); resp.Header.Get(DefaultResponseHeader) != "" {
		t.Error("passport returned unasked")
	}
	if _, ok := ring.Get("req-b"); ok {
		t.Error("passport stored unasked")
	}

	untrusted := serve(t, ring, map[string]any{"trusted_cidrs": []any{"10.0.0.0/8"}})
	resp, body = get(t, untrusted, "X-Floodgate-Debug", "passport")
	if v := resp.Header.Get(DefaultResponseHeader); v != "" {
		t.Errorf("untrusted caller got a passport: %q", v)
	}
	if body != "no" {
		t.Errorf("an untrusted caller's debug header is forwarded: %q", body)
	}
	if _, ok := ring.Get("req-a"); !ok {
		t.Error("the trusted entry vanished")
	}
	if held, _ := ring.Stats(); held != 1 {
		t.Errorf("ring holds %d entries, want 1", held)
	}
}

// The ring keeps its own copy of each id and path: the Context's buffers
// are reused (poisoned, under -race) once its request is done.
func TestRingKeepsIDsAndPathsPastTheirContexts(t *testing.T) {
	ring := NewRing()
	url := serve(t, ring, map[string]any{"trusted_cidrs": []any{"127.0.0.0/8"}})
	paths := map[string]string{"req-a": "/path-a", "req-b": "/path-b", "req-c": "/path-c"}
	for _, id := range []string{"req-a", "req-b", "req-c"} {
		getPath(t, url, paths[id], "x-floodgate-debug", "passport")
	}
	for id, path := range paths {
		if e, ok := ring.Get(id); !ok || e.RequestID != id || e.Path != path {
			t.Errorf("ring entry for %s: id %q path %q, found %v; want path %q", id, e.RequestID, e.Path, ok, path)
		}
	}
}

func TestLongPassportPointsToTheAdminEndpoint(t *testing.T) {
	events := make([]filters.Event, 40)
	for i := range events {
		events[i] = filters.Event{What: strings.Repeat("x", 50)}
	}
	v := HeaderValue(events, "abc", 1024)
	if v != "too long for a header (over 1024 bytes): GET /admin/passports/abc" {
		t.Fatalf("%q", v)
	}
	if v := HeaderValue(events[:2], "abc", 1024); !strings.Contains(v, "; ") || len(v) > 1024 {
		t.Fatalf("short passport %q", v)
	}
}

func TestRingEvictsOldestAndAnswers404WithReason(t *testing.T) {
	r := NewRing()
	for _, id := range []string{"a", "b", "c", "d"} {
		r.Add(Entry{RequestID: id}, 3)
	}
	if _, ok := r.Get("a"); ok {
		t.Error("oldest entry not evicted")
	}
	for _, id := range []string{"b", "c", "d"} {
		if _, ok := r.Get(id); !ok {
			t.Errorf("%s missing", id)
		}
	}
	// Shrinking keeps the newest.
	r.Add(Entry{RequestID: "e"}, 2)
	if _, ok := r.Get("c"); ok {
		t.Error("shrunk ring kept c")
	}
	if _, ok := r.Get("d"); !ok {
		t.Error("shrunk ring lost d")
	}
	h := AdminHandler(r)
	mux := http.NewServeMux()
	mux.Handle(AdminPattern, h)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/passports/a", nil))
	var body map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 404 || !strings.Contains(body["reason"], "evicted") {
		t.Fatalf("%d %v", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/passports/e", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"request_id": "e"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestOptionsValidate(t *testing.T) {
	_, err := filters.Default.Build(&filters.Env{Path: "passport", Services: &filters.Services{}}, FilterName,
		map[string]any{"keep": 0, "trusted_cidrs": []any{"nope"}})
	if err == nil || !strings.Contains(err.Error(), "passport.options.keep") || !strings.Contains(err.Error(), "trusted_cidrs[0]") {
		t.Fatalf("%v", err)
	}
}

func TestTrustedCertificateIdentityGetsThePassport(t *testing.T) {
	opts := map[string]any{"trusted_cidrs": []any{"10.0.0.0/8"}, "trusted_identities": []any{"spiffe://corp/ops"}}
	ops := serveAs(t, NewRing(), opts, []string{"uri:spiffe://corp/ops"})
	if resp, _ := get(t, ops, "X-Floodgate-Debug", "passport"); resp.Header.Get(DefaultResponseHeader) == "" {
		t.Error("a client with a trusted certificate identity got no passport")
	}
	other := serveAs(t, NewRing(), opts, []string{"uri:spiffe://corp/web"})
	resp, body := get(t, other, "X-Floodgate-Debug", "passport")
	if resp.Header.Get(DefaultResponseHeader) != "" || body != "no" {
		t.Errorf("an untrusted certificate identity: passport %q, header forwarded %q", resp.Header.Get(DefaultResponseHeader), body)
	}
}

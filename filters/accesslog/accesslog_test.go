package accesslog

import (
	"github.com/floodgate-dev/floodgate/trust"

	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
	"github.com/floodgate-dev/floodgate/routing"
)

// endpoint stands in for the proxy: /ok succeeds after one failed attempt
// and a retry, /boom fails the request with an error.
type endpoint struct{}

func (endpoint) Name() string                       { return "test_endpoint" }
func (endpoint) Stage() filters.Stage               { return filters.Endpoint }
func (endpoint) Order() int                         { return 0 }
func (endpoint) ShouldFilter(*filters.Context) bool { return true }
func (endpoint) Apply(c *filters.Context) error {
	if c.Path == "/boom" {
		c.Log("origin users: connect refused")
		return filters.Fail(http.StatusBadGateway, filters.CategoryOriginConnectError, "origin users unreachable", errors.New("dial tcp 10.0.0.1:80: connection refused"))
	}
	c.Origin, c.Instance = "users", "10.0.0.2:80"
	c.Attempts = append(c.Attempts,
		filters.Attempt{Instance: "10.0.0.1:80", Outcome: "connect_error", Duration: 1500 * time.Microsecond},
		filters.Attempt{Instance: "10.0.0.2:80", Outcome: "success", Status: 200, Duration: 12 * time.Millisecond, Retry: true},
	)
	c.Request.Response.SetBodyString("hello")
	c.BytesOut = 5
	c.MarkResponded(http.StatusOK, filters.CategorySuccess)
	return nil
}

// limiter rejects /limited like the rate_limit filter would.
type limiter struct{}

func (limiter) Name() string                         { return "test_limit" }
func (limiter) Stage() filters.Stage                 { return filters.Inbound }
func (limiter) Order() int                           { return 200 }
func (limiter) ShouldFilter(c *filters.Context) bool { return c.Path == "/limited" }
func (limiter) Apply(c *filters.Context) error {
	c.Log("rate_limit: bucket empty")
	c.Respond(http.StatusTooManyRequests, filters.CategoryRateLimited, "rate limit exceeded (policy api)")
	return nil
}

func outputs(t *testing.T) (*Outputs, *filters.Services) {
	t.Helper()
	o := NewOutputs(io.Discard, io.Discard)
	liveOutputs = append(liveOutputs, o)
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Error(err)
		}
	})
	s := &filters.Services{}
	OutputsKey.Provide(s, o)
	return o, s
}

func start(t *testing.T, svc *filters.Services, opts map[string]any) string {
	t.Helper()
	f, err := filters.Default.Build(&filters.Env{Path: "filters[0]", Services: svc}, FilterName, opts)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{f, limiter{}, endpoint{}})
	if err != nil {
		t.Fatal(err)
	}
	route := &routing.Route{Name: "api"}
	return chaintest.Serve(t, chain, chaintest.Options{Prepare: func(c *filters.Context) {
		rc := c.Request
		{
			ip := netip.MustParseAddr("192.0.2.7")
			c.SetIdentity(trust.Identity{Peer: ip, Client: ip})
		}
		c.RequestID = string(rc.Request.Header.Peek("X-Request-Id"))
		c.Priority = 40
		c.BytesIn = int64(len(rc.Request.Body()))
		c.Route = route
	}})
}

func send(t *testing.T, url, method, path, id, body string) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
	req.Header.Set("X-Request-Id", id)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// liveOutputs lets readLines flush buffered lines before reading a file,
// instead of waiting out the flush interval.
var liveOutputs []*Outputs

func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	for _, o := range liveOutputs {
		o.Flush()
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestAccessLogLines(t *testing.T) {
	_, svc := outputs(t)
	path := filepath.Join(t.TempDir(), "access.log")
	url := start(t, svc, map[string]any{"output": path})
	send(t, url, http.MethodPost, "/ok", "req-1", "abc")
	send(t, url, http.MethodGet, "/limited", "req-2", "")
	send(t, url, http.MethodGet, "/boom", "req-3", "")

	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	ok := lines[0]
	want := map[string]any{
		"level": "INFO", "msg": "request", "request_id": "req-1", "method": "POST",
		"path": "/ok", "status": 200.0, "category": "success", "route": "api",
		"origin": "users", "instance": "10.0.0.2:80", "priority": 40.0, "attempts": 2.0,
		"attempt_log": "10.0.0.1:80 connect_error 0 1.5ms; 10.0.0.2:80 success 200 12.0ms retry",
		"bytes_in":    3.0, "bytes_out": 5.0, "client_ip": "192.0.2.7",
	}
	for k, v := range want {
		if ok[k] != v {
			t.Errorf("success line %s = %#v, want %#v", k, ok[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, ok["time"].(string)); err != nil {
		t.Errorf("time %v: %v", ok["time"], err)
	}
	if d, _ := ok["duration_ms"].(float64); d <= 0 || d > 5000 {
		t.Errorf("duration_ms %v", ok["duration_ms"])
	}
	if !strings.HasPrefix(ok["host"].(string), "127.0.0.1:") {
		t.Errorf("host %v", ok["host"])
	}
	for _, k := range []string{"reason", "error", "passport"} {
		if _, has := ok[k]; has {
			t.Errorf("success line has %s", k)
		}
	}

	lim := lines[1]
	if lim["level"] != "WARN" || lim["status"] != 429.0 || lim["category"] != "rate_limited" ||
		lim["reason"] != "rate limit exceeded (policy api)" || lim["request_id"] != "req-2" {
		t.Errorf("limited line %v", lim)
	}
	// The chain's record of the step that answered, then the note it made.
	if p, _ := lim["passport"].([]any); len(p) < 2 || !strings.Contains(p[0].(string), "ms test_limit responded") ||
		!strings.HasSuffix(p[1].(string), "ms rate_limit: bucket empty") {
		t.Errorf("passport %v", lim["passport"])
	}
	if _, has := lim["origin"]; has {
		t.Error("rejected request logged an origin")
	}

	boom := lines[2]
	if boom["status"] != 502.0 || boom["category"] != "origin_connect_error" ||
		!strings.Contains(boom["error"].(string), "connection refused") || boom["reason"] != "origin users unreachable" {
		t.Errorf("failure line %v", boom)
	}
}

func TestSuccessSampling(t *testing.T) {
	_, svc := outputs(t)
	path := filepath.Join(t.TempDir(), "sampled.log")
	url := start(t, svc, map[string]any{"output": path, "sample_successes": 0})
	for range 5 {
		send(t, url, http.MethodGet, "/ok", "s", "")
	}
	send(t, url, http.MethodGet, "/limited", "f1", "")
	send(t, url, http.MethodGet, "/boom", "f2", "")
	lines := readLines(t, path)
	if len(lines) != 2 || lines[0]["request_id"] != "f1" || lines[1]["request_id"] != "f2" {
		t.Fatalf("sampling 0 wrote %v", lines)
	}

	// A fraction samples about that share of successes.
	half := filepath.Join(t.TempDir(), "half.log")
	f, err := filters.Default.Build(&filters.Env{Path: "f", Services: svc}, FilterName, map[string]any{"output": half, "sample_successes": 0.25})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	for range n {
		c := filters.AcquireContext()
		c.Status, c.Category = 200, filters.CategorySuccess
		c.Request = &fasthttp.RequestCtx{}
		if err := f.Apply(c); err != nil {
			t.Fatal(err)
		}
		c.Request = nil
		c.Release()
	}
	got := len(readLines(t, half))
	// Binomial(4000, 0.25): sd ~27; 150 is over 5 sd.
	if got < n/4-150 || got > n/4+150 {
		t.Fatalf("sampled %d of %d at 0.25", got, n)
	}
}

func TestReopenForRotation(t *testing.T) {
	o, svc := outputs(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	url := start(t, svc, map[string]any{"output": path})
	send(t, url, http.MethodGet, "/ok", "before", "")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	send(t, url, http.MethodGet, "/ok", "during", "") // still the renamed file
	if err := o.Reopen(); err != nil {
		t.Fatal(err)
	}
	send(t, url, http.MethodGet, "/ok", "after", "")
	old, cur := readLines(t, path+".1"), readLines(t, path)
	if len(old) != 2 || len(cur) != 1 || cur[0]["request_id"] != "after" {
		t.Fatalf("rotated %v, current %v", old, cur)
	}
}

func TestOutputsShareAndCountErrors(t *testing.T) {
	o := NewOutputs(nil, nil)
	path := filepath.Join(t.TempDir(), "x.log")
	a, err := o.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := o.Open(path)
	if a != b {
		t.Fatal("same path opened twice")
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("late\n")); err == nil || o.WriteErrors() != 1 {
		t.Fatalf("write after close: %v, errors %d", err, o.WriteErrors())
	}
	if _, err := o.Open(filepath.Join(t.TempDir(), "y.log")); err == nil {
		t.Fatal("opened a file after Close")
	}
}

func TestBuildErrors(t *testing.T) {
	_, svc := outputs(t)
	cases := []struct {
		svc  *filters.Services
		opts map[string]any
		want string
	}{
		{svc, map[string]any{"sample_successes": 1.5, "output": ""}, "routes[0].filters[1].options.output: must be"},
		{svc, map[string]any{"sample_successes": -0.1}, "routes[0].filters[1].options.sample_successes: must be between 0 and 1"},
		{svc, map[string]any{"output": "/nonexistent-dir/x/access.log"}, "routes[0].filters[1].options.output: opening access log:"},
		{svc, map[string]any{"format": "text"}, "routes[0].filters[1].options.format: unknown key"},
		{&filters.Services{}, nil, "routes[0].filters[1]: access_log needs the gateway's accesslog.Outputs service"},
	}
	for _, tc := range cases {
		_, err := filters.Default.Build(&filters.Env{Path: "routes[0].filters[1]", Services: tc.svc}, FilterName, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("options %v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
}

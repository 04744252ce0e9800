package requestid

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
)

// echoEndpoint plays the origin: it answers with the id header the
// forwarder would send it (the gateway's upstream value, else the client's),
// after resetting the response like a forwarding endpoint does.
type echoEndpoint struct{ header string }

func (echoEndpoint) Name() string                       { return "test_echo" }
func (echoEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (echoEndpoint) Order() int                         { return 0 }
func (echoEndpoint) ShouldFilter(*filters.Context) bool { return true }
func (e echoEndpoint) Apply(c *filters.Context) error {
	got, set := "", false
	c.UpstreamHeaders(func(name, value string) {
		if strings.EqualFold(name, e.header) {
			got, set = value, true
		}
	})
	if !set && !c.UpstreamOwns([]byte(e.header)) {
		got = string(c.RequestHeader(e.header))
	}
	c.Request.Response.Reset()
	c.Request.Response.SetBodyString(got)
	c.MarkResponded(200, filters.CategorySuccess)
	return nil
}

type server struct {
	url  string
	mu   sync.Mutex
	logs []string // c.RequestID seen by completion hooks
}

func start(t *testing.T, opts map[string]any, header string) *server {
	t.Helper()
	return startFrom(t, opts, header, false)
}

// startFrom is start with the TCP peer trusted as a proxy (server.trusted_proxies) or not.
func startFrom(t *testing.T, opts map[string]any, header string, peerTrusted bool) *server {
	t.Helper()
	f, err := filters.Default.Build(&filters.Env{Path: "filters[0]"}, FilterName, opts)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{f, echoEndpoint{header: header}})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{}
	s.url = chaintest.Serve(t, chain, chaintest.Options{Prepare: func(c *filters.Context) {
		if peerTrusted {
			id := c.Identity()
			id.PeerTrusted = true
			c.SetIdentity(id)
		}
		c.OnDone(func(c *filters.Context) {
			s.mu.Lock()
			// Kept past the request: a copy (the Context's id buffer
			// is reused, and poisoned under -race).
			s.logs = append(s.logs, strings.Clone(c.RequestID))
			s.mu.Unlock()
		})
	}}) + "/"
	return s
}

// do sends a request with the id header set to id (unless empty) and
// returns the id the origin saw and the id returned to the client.
func do(t *testing.T, s *server, header, id string) (upstream, returned string) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, s.url, nil)
	if id != "" {
		req.Header[header] = []string{id}
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body), resp.Header.Get(header)
}

var generated = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestIDOverHTTP(t *testing.T) {
	s := startFrom(t, nil, DefaultHeader, true)
	cases := []struct {
		in   string
		keep bool
	}{
		{"", false},
		{"3f2c1a9e-7b1d-4c7e-9a3b-0d9f8e7c6b5a", true},
		{"01HV6Z2Q8W6K3J5X7Y9A1B2C3D", true},
		{"trace:abc/def+ghi=@x_y.z", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"quote\"d", false},
		{"comma,separated", false},
		{"semi;colon", false},
	}
	for _, tc := range cases {
		up, back := do(t, s, DefaultHeader, tc.in)
		if up != back {
			t.Errorf("in %q: origin saw %q, client got %q", tc.in, up, back)
		}
		if tc.keep && back != tc.in {
			t.Errorf("valid id %q replaced by %q", tc.in, back)
		}
		if !tc.keep && !generated.MatchString(back) {
			t.Errorf("invalid id %q: got %q, want a generated id", tc.in, back)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logs) != len(cases) || s.logs[1] != cases[1].in || !generated.MatchString(s.logs[0]) {
		t.Fatalf("completion hooks saw %q", s.logs)
	}
}

func TestUntrustedAndCustomHeader(t *testing.T) {
	s := start(t, map[string]any{"header": "x-correlation-id", "trust_incoming": false}, "X-Correlation-Id")
	up, back := do(t, s, "X-Correlation-Id", "client-chosen")
	if !generated.MatchString(back) || up != back {
		t.Fatalf("untrusted id kept: origin %q, client %q", up, back)
	}
}

// By default an id is kept only from a trusted proxy, the rule X-Forwarded-* follows;
// trust_from: anyone keeps any client's.
func TestIncomingIDTrustedOnlyFromTrustedProxiesByDefault(t *testing.T) {
	const id = "3f2c1a9e-7b1d-4c7e-9a3b-0d9f8e7c6b5a"
	for _, tc := range []struct {
		name        string
		opts        map[string]any
		peerTrusted bool
		keep        bool
	}{
		{"direct client, default", nil, false, false},
		{"trusted proxy, default", nil, true, true},
		{"direct client, trust_from anyone", map[string]any{"trust_from": "anyone"}, false, true},
		{"trusted proxy, trust_incoming false", map[string]any{"trust_incoming": false}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startFrom(t, tc.opts, DefaultHeader, tc.peerTrusted)
			up, back := do(t, s, DefaultHeader, id)
			if up != back {
				t.Fatalf("origin saw %q, client got %q", up, back)
			}
			if tc.keep && back != id {
				t.Fatalf("id from a trusted source replaced by %q", back)
			}
			if !tc.keep && !generated.MatchString(back) {
				t.Fatalf("id kept (%q), want a generated one", back)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	_, err := filters.Default.Build(&filters.Env{Path: "filters[0]"}, FilterName, map[string]any{"header": "bad header", "max_length": 0, "trust_from": "everyone"})
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{`filters[0].options.header: "bad header" is not a valid header name`, "max_length: must be between 1 and 1024", `trust_from: must be trusted_proxies or anyone, got "everyone"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

func TestNewIsUniqueAndWellFormed(t *testing.T) {
	seen := make(map[string]bool, 20000)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5000 {
				id := New()
				mu.Lock()
				dup := seen[id]
				seen[id] = true
				mu.Unlock()
				if dup || !generated.MatchString(id) {
					t.Errorf("bad or duplicate id %q", id)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		_ = New()
	}
}

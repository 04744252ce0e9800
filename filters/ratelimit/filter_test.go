package ratelimit

import (
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
	"github.com/floodgate-dev/floodgate/routing"
)

func services(l *ratelimit.Limiters) *filters.Services {
	s := &filters.Services{}
	LimitersKey.Provide(s, l)
	return s
}

func get(t *testing.T, cl *http.Client, url, clientIP string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if clientIP != "" {
		req.Header.Set(clientIPHeader, clientIP)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

func TestRejectionHeadersOverHTTP(t *testing.T) {
	l := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer l.Close()
	if err := l.Update([]ratelimit.Policy{{Name: "api", Rate: 0.5, Burst: 2}}); err != nil {
		t.Fatal(err)
	}
	chain := buildChain(t, services(l), spec2{"rate_limit", map[string]any{"policy": "api"}})
	url := startServer(t, chain, &routing.Route{Name: "r"})
	cl := newClient(t)

	// Admitted responses report the quota even though the endpoint reset
	// the response headers.
	for i, wantRemaining := range []string{"1", "0"} {
		resp := get(t, cl, url, "192.0.2.1")
		if resp.StatusCode != 200 || resp.Header.Get(HeaderLimit) != "2" || resp.Header.Get(HeaderRemaining) != wantRemaining {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, resp.Header)
		}
		if resp.Header.Get(HeaderRetryAfter) != "" {
			t.Fatalf("Retry-After on an admitted response")
		}
	}
	resp := get(t, cl, url, "192.0.2.1")
	h := resp.Header
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
	if h.Get(filters.StatusHeader) != string(filters.CategoryRateLimited) {
		t.Fatalf("status header %q", h.Get(filters.StatusHeader))
	}
	// 0.5 tokens/s: a whole token in 2 s, a full bucket of 2 in 4 s (the
	// clock moved a little since, so allow the rounded-up value).
	if ra := h.Get(HeaderRetryAfter); ra != "2" {
		t.Fatalf("Retry-After %q, want 2", ra)
	}
	if h.Get(HeaderLimit) != "2" || h.Get(HeaderRemaining) != "0" || h.Get(HeaderReset) != "4" {
		t.Fatalf("quota headers %v", h)
	}
	// Another client has its own bucket.
	if resp := get(t, cl, url, "192.0.2.2"); resp.StatusCode != 200 {
		t.Fatalf("other client limited: %d", resp.StatusCode)
	}
}

func TestRejectionReasonAndPassport(t *testing.T) {
	l := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer l.Close()
	if err := l.Update([]ratelimit.Policy{{Name: "tight", Rate: 1, Burst: 1, MaxKeys: 1}}); err != nil {
		t.Fatal(err)
	}
	chain := buildChain(t, services(l), spec2{"rate_limit", map[string]any{"policy": "tight"}})
	var reasons []string
	var mu sync.Mutex
	route := &routing.Route{Name: "r"}
	url := startServerHook(t, chain, route, func(c *filters.Context) {
		mu.Lock()
		reasons = append(reasons, c.Reason)
		mu.Unlock()
	})
	cl := newClient(t)
	get(t, cl, url, "192.0.2.1")
	get(t, cl, url, "192.0.2.1")
	get(t, cl, url, "192.0.2.9") // table full: overflow bucket
	get(t, cl, url, "192.0.2.10")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"", "rate limit exceeded (policy tight)", "", "rate limit exceeded (policy tight, shared overflow bucket: too many tracked keys)"}
	if strings.Join(reasons, "|") != strings.Join(want, "|") {
		t.Fatalf("reasons %q, want %q", reasons, want)
	}
}

// TestRealTimeAccuracyOverHTTP offers well above the limit for 2 s through
// a real server and compares admissions with rate*window + burst, where the
// window is measured by the limiter's own clock (first to last decision).
func TestRealTimeAccuracyOverHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	var first, last atomic.Int64
	now := func() time.Time {
		n := time.Now()
		first.CompareAndSwap(0, n.UnixNano())
		last.Store(n.UnixNano())
		return n
	}
	const rate, burst = 150.0, 15
	l := ratelimit.New(ratelimit.Options{Now: now, SweepInterval: -1})
	defer l.Close()
	if err := l.Update([]ratelimit.Policy{{Name: "p", Rate: rate, Burst: burst}}); err != nil {
		t.Fatal(err)
	}
	chain := buildChain(t, services(l), spec2{"rate_limit", map[string]any{"policy": "p"}})
	url := startServer(t, chain, &routing.Route{Name: "r"})
	cl := newClient(t)

	var admitted, rejected atomic.Int64
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				switch get(t, cl, url, "198.51.100.7").StatusCode {
				case 200:
					admitted.Add(1)
				case 429:
					rejected.Add(1)
				}
			}
		})
	}
	wg.Wait()
	window := time.Duration(last.Load() - first.Load())
	want := rate*window.Seconds() + burst
	got := float64(admitted.Load())
	offered := float64(admitted.Load()+rejected.Load()) / window.Seconds()
	errPct := 100 * math.Abs(got-want) / want
	t.Logf("window %v, offered %.0f req/s, admitted %.0f, want %.1f (error %.2f%%)", window, offered, got, want, errPct)
	if offered < 1.5*rate {
		t.Skipf("machine too slow to offer 1.5x the limit (%.0f req/s)", offered)
	}
	// Over-admission is the limiter's fault and fails the test. Admitting
	// less only means the offered load had gaps longer than burst/rate (a
	// busy shared machine stalls the client), so it is reported, not
	// failed; the deterministic clock tests hold accuracy to 2 %.
	if got > want*1.03 {
		t.Fatalf("admitted %.0f, more than %.1f + 3%%", got, want)
	}
	if errPct > 3 {
		t.Logf("under-admitted by %.2f%%: the client's offered load had gaps", errPct)
	}
}

func TestBuildErrors(t *testing.T) {
	l := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer l.Close()
	if err := l.Update([]ratelimit.Policy{{Name: "a", Rate: 1}}); err != nil {
		t.Fatal(err)
	}
	env := &filters.Env{Path: "routes[1].filters[0]", Services: services(l)}
	cases := []struct {
		opts map[string]any
		env  *filters.Env
		want string
	}{
		{map[string]any{}, env, "routes[1].filters[0].options.policy: must name a rate-limit policy"},
		{map[string]any{"policy": "b"}, env, `routes[1].filters[0].options.policy: unknown rate-limit policy "b" (defined: a)`},
		{map[string]any{"policy": "a", "rate": 3}, env, "routes[1].filters[0].options.rate: unknown key"},
		{map[string]any{"policy": "a"}, &filters.Env{Path: "filters[0]", Services: &filters.Services{}}, "filters[0]: rate_limit needs the gateway's ratelimit.Limiters service"},
	}
	for _, tc := range cases {
		_, err := filters.Default.Build(tc.env, FilterName, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("options %v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	// The snapshot being built wins over the installed policies.
	s := services(l)
	PoliciesKey.Provide(s, ratelimit.Config{Policies: []ratelimit.Policy{{Name: "new", Rate: 1}}})
	if _, err := filters.Default.Build(&filters.Env{Path: "p", Services: s}, FilterName, map[string]any{"policy": "new"}); err != nil {
		t.Fatalf("policy from the pending snapshot rejected: %v", err)
	}
}

func TestRemovedPolicyFailsOpen(t *testing.T) {
	l := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer l.Close()
	if err := l.Update([]ratelimit.Policy{{Name: "a", Rate: 1, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	chain := buildChain(t, services(l), spec2{"rate_limit", map[string]any{"policy": "a"}})
	if err := l.Update(nil); err != nil {
		t.Fatal(err)
	}
	var passport []string
	url := startServerHook(t, chain, nil, func(c *filters.Context) {
		for _, e := range c.Passport() {
			if e.Filter == "" && e.Values[0].Name == "" { // notes without values
				passport = append(passport, e.What)
			}
		}
	})
	cl := newClient(t)
	for range 3 {
		if resp := get(t, cl, url, ""); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if len(passport) != 3 || !strings.Contains(passport[0], "no longer configured") {
		t.Fatalf("passport %q", passport)
	}
}

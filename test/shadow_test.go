package test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// gathered reads one counter or histogram count from g: the sum over the
// series whose labels include want.
func gathered(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// shadowSink is a shadow origin that records what reached it.
type shadowSink struct {
	mu     sync.Mutex
	hosts  []string
	bodies []string
	marks  []string
}

func (s *shadowSink) handler(status int, hold <-chan struct{}) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		var body []byte
		if st := ctx.RequestBodyStream(); st != nil {
			body, _ = io.ReadAll(st)
		}
		s.mu.Lock()
		s.hosts = append(s.hosts, string(ctx.Host()))
		s.bodies = append(s.bodies, string(body))
		s.marks = append(s.marks, string(ctx.Request.Header.Peek("X-Floodgate-Shadow")))
		s.mu.Unlock()
		if hold != nil {
			<-hold // a hung shadow: answers only when the test ends
		}
		ctx.SetStatusCode(status)
		ctx.SetBodyString("shadow")
	}
}

func (s *shadowSink) seen() (hosts, bodies, marks []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hosts), slices.Clone(s.bodies), slices.Clone(s.marks)
}

// Issue 18 item 3: a shadow origin that hangs or errors changes nothing for
// clients, copies carry the shadow mark, the rewritten Host and the body,
// concurrency is bounded, and results show up only in metrics.
func TestShadowNeverTouchesTheClientsRequest(t *testing.T) {
	var primaryShadowMarks atomic.Int64
	primary := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		if len(ctx.Request.Header.Peek("X-Floodgate-Shadow")) > 0 {
			primaryShadowMarks.Add(1)
		}
		if st := ctx.RequestBodyStream(); st != nil {
			_, _ = io.Copy(io.Discard, st)
		}
		ctx.SetBodyString("primary")
	})
	hold := make(chan struct{})
	hung := &shadowSink{}
	hangOrigin := startOrigin(t, hung.handler(200, hold))
	t.Cleanup(func() { close(hold) }) // runs before the origin's shutdown
	good := &shadowSink{}
	goodOrigin := startOrigin(t, good.handler(200, nil))
	failing := &shadowSink{}
	failOrigin := startOrigin(t, failing.handler(500, nil))

	const hangTimeout = 400 * time.Millisecond
	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", max_body_size: 1MiB}
origins:
  primary: {instances: [{address: %q}]}
  hang: {instances: [{address: %q}], breaker: {consecutive_failures: 1000000, failure_ratio: 1, min_requests: 1000000}}
  good: {instances: [{address: %q}]}
  fails: {instances: [{address: %q}]}
  dead: {instances: [{address: %q}], breaker: {consecutive_failures: 1000000, failure_ratio: 1, min_requests: 1000000}}
routes:
  - {name: plain, match: {path_prefix: /plain}, origin: primary}
  - name: hang
    match: {path_prefix: /hang}
    origin: primary
    shadow: {origin: hang, fraction: 1, max_concurrency: 4, timeout: %s}
  - name: dead
    match: {path_prefix: /dead}
    origin: primary
    shadow: {origin: dead, fraction: 1, timeout: 200ms}
  - name: good
    match: {path_prefix: /good}
    origin: primary
    shadow: {origin: good, fraction: 1, max_body: 1KiB, host: shadow.internal}
  - name: fails
    match: {path_prefix: /fails}
    origin: primary
    shadow: {origin: fails, fraction: 1}
`, primary.addr, hangOrigin.addr, goodOrigin.addr, failOrigin.addr, deadAddr(t), hangTimeout))
	c := httpClient(t)
	base := "http://" + gw.addr

	// Latency of the real path with and without a hung shadow, interleaved
	// so machine noise hits both alike.
	const n = 300
	var plain, hang []time.Duration
	start := time.Now()
	for i := 0; i < n; i++ {
		for _, route := range []string{"/plain", "/hang", "/dead"} {
			resp, d := getOnce(t, c, base+route+"/x")
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d (a shadow failed the client's request)", route, resp.StatusCode)
			}
			switch route {
			case "/plain":
				plain = append(plain, d)
			case "/hang":
				hang = append(hang, d)
			}
		}
	}
	elapsed := time.Since(start)
	slices.Sort(plain)
	slices.Sort(hang)
	q := func(l []time.Duration, f float64) time.Duration { return l[min(len(l)-1, int(f*float64(len(l))))] }
	t.Logf("primary latency without shadow: median %v p99 %v; with a hung shadow (timeout %v): median %v p99 %v (n=%d each)",
		q(plain, 0.5), q(plain, 0.99), hangTimeout, q(hang, 0.5), q(hang, 0.99), n)
	// Loose bounds: a client that waited for the shadow would take the
	// shadow's whole timeout.
	if q(hang, 0.5) > 2*q(plain, 0.5)+2*time.Millisecond || q(hang, 0.99) > 3*q(plain, 0.99)+50*time.Millisecond {
		t.Errorf("the hung shadow slowed the real path")
	}
	if q(hang, 0.99) >= hangTimeout/2 {
		t.Errorf("p99 %v is near the shadow's timeout", q(hang, 0.99))
	}

	// The bound: at most max_concurrency copies at once, the rest skipped.
	// The hung origin keeps every copy it got (the gateway gives up on one
	// after its timeout), so it can have seen at most 4 per timeout
	// period of the run.
	hosts, _, _ := hung.seen()
	if limit := 4 * (int(elapsed/hangTimeout) + 2); len(hosts) > limit || len(hosts) < 1 {
		t.Errorf("the hung shadow got %d copies in %v, want 1..%d (4 at a time per %v)", len(hosts), elapsed, limit, hangTimeout)
	}
	g := gw.m.Gatherer()
	if v := gathered(t, g, "floodgate_shadow_requests_total", map[string]string{"route": "hang", "result": "skipped_concurrency"}); v < n/2 {
		t.Errorf("skipped_concurrency on the hung route = %v, want most of %d", v, n)
	}
	eventually(t, 5*time.Second, "the dead shadow's errors counted", func() bool {
		return gathered(t, g, "floodgate_shadow_requests_total", map[string]string{"route": "dead", "result": "error"}) > 0
	})

	// Copies carry the mark, the configured Host and the body; a body over
	// max_body is not replayed; the primary never sees the mark.
	post := func(path, body string) {
		resp, err := c.Post(base+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "primary" {
			t.Fatalf("POST %s: %d %q", path, resp.StatusCode, b)
		}
	}
	post("/good/a", "hello shadow")
	post("/good/b", strings.Repeat("x", 2048))
	post("/fails/a", "x")
	eventually(t, 5*time.Second, "the copies answered", func() bool {
		return gathered(t, g, "floodgate_shadow_status_class_match_total", map[string]string{"route": "good", "match": "true"}) == 1 &&
			gathered(t, g, "floodgate_shadow_status_class_match_total", map[string]string{"route": "fails", "match": "false"}) == 1
	})
	hosts, bodies, marks := good.seen()
	if len(bodies) != 1 || bodies[0] != "hello shadow" || hosts[0] != "shadow.internal" || marks[0] != "1" {
		t.Errorf("the good shadow saw hosts %q bodies %q marks %q", hosts, bodies, marks)
	}
	if v := gathered(t, g, "floodgate_shadow_requests_total", map[string]string{"route": "good", "result": "skipped_body"}); v != 1 {
		t.Errorf("skipped_body = %v, want 1 (the 2 KiB body over max_body 1KiB)", v)
	}
	if v := gathered(t, g, "floodgate_shadow_latency_seconds", map[string]string{"route": "good"}); v != 1 {
		t.Errorf("shadow latency samples %v", v)
	}
	if v := gathered(t, g, "floodgate_shadow_primary_latency_seconds", map[string]string{"route": "good"}); v != 1 {
		t.Errorf("primary latency samples %v", v)
	}
	// A client cannot pass its request off as shadow traffic.
	forged, _ := http.NewRequest("GET", base+"/plain/forged", nil)
	forged.Header.Set("x-floodgate-shadow", "1")
	if resp, err := c.Do(forged); err != nil || resp.StatusCode != 200 {
		t.Fatalf("forged shadow mark: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if v := primaryShadowMarks.Load(); v != 0 {
		t.Errorf("the primary received %d requests marked as shadow", v)
	}
	if v := gathered(t, g, "floodgate_requests_total", map[string]string{"code_class": "5xx"}); v != 0 {
		t.Errorf("%v client requests failed", v)
	}
}

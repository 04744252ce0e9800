package concurrencylimit

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	ratelimitfilter "github.com/floodgate-dev/floodgate/filters/ratelimit"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
	"github.com/floodgate-dev/floodgate/internal/redistest"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// gateEndpoint holds each request until the test sends on release, then answers
// the way the request's X-Outcome header asks: ok, error or panic.
type gateEndpoint struct {
	entered chan struct{}
	release chan struct{}
}

func (gateEndpoint) Name() string                       { return "test_gate" }
func (gateEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (gateEndpoint) Order() int                         { return 0 }
func (gateEndpoint) ShouldFilter(*filters.Context) bool { return true }
func (g gateEndpoint) Apply(c *filters.Context) error {
	g.entered <- struct{}{}
	<-g.release
	switch string(c.Request.Request.Header.Peek("X-Outcome")) {
	case "error":
		return errors.New("origin failed")
	case "panic":
		panic("endpoint bug")
	}
	c.Request.Response.SetBodyString("ok")
	c.MarkResponded(http.StatusOK, filters.CategorySuccess)
	return nil
}

type fixture struct {
	lim     *ratelimit.Limiters
	url     string
	client  *http.Client
	gate    gateEndpoint
	reasons chan string
}

func newFixture(t *testing.T, cfg ratelimit.Config) *fixture {
	t.Helper()
	lim := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	t.Cleanup(lim.Close)
	if err := lim.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	svc := &filters.Services{}
	ratelimitfilter.LimitersKey.Provide(svc, lim)
	f, err := filters.Default.Build(&filters.Env{Path: "filters[0]", Services: svc}, FilterName, map[string]any{"policy": "c"})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{lim: lim, gate: gateEndpoint{entered: make(chan struct{}, 64), release: make(chan struct{})}, reasons: make(chan string, 64)}
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{f, fx.gate})
	if err != nil {
		t.Fatal(err)
	}
	fx.url = chaintest.Serve(t, chain, chaintest.Options{Prepare: func(c *filters.Context) {
		c.OnDone(func(c *filters.Context) {
			if c.Reason != "" {
				fx.reasons <- c.Reason
			}
		})
	}})
	fx.client = chaintest.Client(t)
	return fx
}

type result struct {
	status int
	header http.Header
	body   string
	err    error
}

func (fx *fixture) send(ctx context.Context, outcome string) result {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fx.url, nil)
	req.Header.Set("X-Outcome", outcome)
	resp, err := fx.client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// inFlight is the policy's held slots in this process.
func (fx *fixture) inFlight() int64 { return fx.lim.ConcurrencyStats()[0].InFlight }

// awaitInFlight waits until the held slots drop to n: releases happen in
// completion hooks, after the client has its answer.
func (fx *fixture) awaitInFlight(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for fx.inFlight() != n {
		if time.Now().After(deadline) {
			t.Fatalf("in flight %d, want %d", fx.inFlight(), n)
		}
		time.Sleep(time.Millisecond) // polling a counter; no event to await
	}
}

func testLimitAndReleaseOnEveryPath(t *testing.T, cfg ratelimit.Config) {
	fx := newFixture(t, cfg)
	results := make(chan result, 2)
	var wg sync.WaitGroup
	for _, outcome := range []string{"error", "panic"} {
		wg.Go(func() { results <- fx.send(context.Background(), outcome) })
		<-fx.gate.entered
	}
	// Two in flight: a third is refused with 429, reason and category.
	r := fx.send(context.Background(), "ok")
	if r.status != http.StatusTooManyRequests || r.header.Get(filters.StatusHeader) != string(Category) ||
		r.header.Get("Retry-After") != "1" || !strings.Contains(r.body, "concurrency limit exceeded (policy c: 2 of 2 requests in flight)") {
		t.Fatalf("third request: %d %v %q", r.status, r.header, r.body)
	}
	if reason := <-fx.reasons; !strings.Contains(reason, "concurrency limit exceeded") {
		t.Fatalf("logged reason %q", reason)
	}
	// An origin error and a panic both release their slots.
	fx.gate.release <- struct{}{}
	fx.gate.release <- struct{}{}
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusBadGateway && r.status != http.StatusInternalServerError {
			t.Fatalf("failed request answered %d %q", r.status, r.body)
		}
	}
	fx.awaitInFlight(t, 0)

	// A client that gives up mid-request: its slot is released when the
	// gateway finishes the request.
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan result, 1)
	go func() { gone <- fx.send(ctx, "ok") }()
	<-fx.gate.entered
	if fx.inFlight() != 1 {
		t.Fatalf("in flight %d with one request held", fx.inFlight())
	}
	cancel()
	if r := <-gone; r.err == nil {
		t.Fatal("cancelled request completed")
	}
	fx.gate.release <- struct{}{}
	fx.awaitInFlight(t, 0)
	// And the slots are usable again.
	go func() {
		<-fx.gate.entered
		fx.gate.release <- struct{}{}
	}()
	if r := fx.send(context.Background(), "ok"); r.status != http.StatusOK {
		t.Fatalf("after releases: %d %q", r.status, r.body)
	}
	fx.awaitInFlight(t, 0)
}

func TestLocalLimitAndReleaseOnEveryPath(t *testing.T) {
	testLimitAndReleaseOnEveryPath(t, ratelimit.Config{Concurrency: []ratelimit.ConcurrencyPolicy{{Name: "c", Max: 2}}})
}

func TestRedisLimitAndReleaseOnEveryPath(t *testing.T) {
	srv := redistest.Start(t)
	testLimitAndReleaseOnEveryPath(t, ratelimit.Config{
		Concurrency: []ratelimit.ConcurrencyPolicy{{Name: "c", Max: 2, Backend: ratelimit.BackendRedis}},
		Redis:       ratelimit.RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second},
	})
	// Every slot was given back in Redis too, not left to its lease.
	n, err := srv.Client(t).DBSize(context.Background()).Result()
	if err != nil || n != 0 {
		t.Fatalf("%d keys left in Redis (%v)", n, err)
	}
}

func TestBuildErrors(t *testing.T) {
	lim := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer lim.Close()
	if err := lim.Configure(ratelimit.Config{Concurrency: []ratelimit.ConcurrencyPolicy{{Name: "a", Max: 1}}}); err != nil {
		t.Fatal(err)
	}
	svc := &filters.Services{}
	ratelimitfilter.LimitersKey.Provide(svc, lim)
	for opts, want := range map[string]string{
		"":  "routes[0].filters[1].options.policy: must name a concurrency policy",
		"b": `routes[0].filters[1].options.policy: unknown concurrency policy "b" (defined: a)`,
	} {
		_, err := filters.Default.Build(&filters.Env{Path: "routes[0].filters[1]", Services: svc}, FilterName, map[string]any{"policy": opts})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("policy %q: %v, want %q", opts, err, want)
		}
	}
	if _, err := filters.Default.Build(&filters.Env{Path: "p", Services: svc}, FilterName, map[string]any{"policy": "a"}); err != nil {
		t.Fatal(err)
	}
}

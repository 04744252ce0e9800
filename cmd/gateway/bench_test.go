package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"
)

// benchChainConfig is the production-like chain of test/bench/compare.sh:
// request id, scoring and shedding enabled (not triggered), a rate-limit
// policy that never triggers, metrics, P2C with breakers over one origin,
// and the access log sampling 1 % of successes.
const benchChainConfig = `
server: {listen: "127.0.0.1:0"}
request_id: {options: {header: X-Request-Id, trust_incoming: false}}
access_log: {enabled: true, options: {output: %q, sample_successes: 0.01}}
rate_limit:
  policies:
    - {name: per-client, rate: 100000000, burst: 100000000, key: [client_ip]}
filters:
  - {name: rate_limit, options: {policy: per-client}}
origins:
  bench:
    instances: [{address: %q}]
    lb: p2c
routes:
  - name: bench
    match: {path_prefix: /}
    origin: bench
loadshed:
  scoring:
    default_score: 50
    rules:
      - {name: health, match: {paths: [/healthz]}, set: 0, stop: true}
  global:
    signals:
      inflight: {enabled: true, threshold: 20000, max: 80000}
      connections: {enabled: true, threshold: 50000, max: 100000}
      cpu: {enabled: false}
  origin:
    signals:
      inflight: {enabled: true, threshold: 5000, max: 20000}
`

// chainBench drives the gateway's handler in-process, as fasthttp's server
// loop would: one request context, the handler, the response written (which
// streams the body and completes the request), reset.
type chainBench struct {
	handler fasthttp.RequestHandler
	ctx     fasthttp.RequestCtx
	out     *bufio.Writer
	close   func()
}

func newChainBench(tb testing.TB, bodySize int) *chainBench {
	tb.Helper()
	return newChainBenchConfig(tb, bodySize, benchChainConfig)
}

// newChainBenchConfig is newChainBench with another config (a format with
// the access log's path and the origin's address, like benchChainConfig).
func newChainBenchConfig(tb testing.TB, bodySize int, configFormat string) *chainBench {
	tb.Helper()
	body := make([]byte, bodySize)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	origin := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBody(body)
	}}
	served := make(chan struct{})
	go func() { defer close(served); _ = origin.Serve(ln) }()

	a, _ := startAppWith(tb, fmt.Sprintf(configFormat, filepath.Join(tb.TempDir(), "access.log"), ln.Addr().String()))
	a.rt.attach(a.server)
	srv := a.server
	b := &chainBench{handler: srv.Handler(), out: bufio.NewWriterSize(io.Discard, 16<<10)}
	var req fasthttp.Request
	req.SetRequestURI(fmt.Sprintf("/%d", bodySize))
	req.Header.SetHost("bench.example")
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	b.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	b.close = func() {
		_ = origin.Shutdown()
		<-served
	}
	return b
}

// do serves one request and fails unless it was proxied with a 200.
func (b *chainBench) do(tb testing.TB) {
	b.handler(&b.ctx)
	if err := b.ctx.Response.Write(b.out); err != nil {
		tb.Fatal(err)
	}
	if code := b.ctx.Response.StatusCode(); code != 200 {
		tb.Fatalf("status %d: %s", code, b.ctx.Response.Body())
	}
	b.out.Reset(io.Discard)
	// fasthttp's order after writing a response: the request (its user
	// values first, which gives back a body lent to the response), then
	// the response.
	b.ctx.Request.ResetUserValues()
	b.ctx.Response.Reset()
}

// BenchmarkGatewayGET is a GET through the full production chain to a
// loopback origin; allocs/op is the figure (docs/PERFORMANCE.md), exact
// whatever else the machine is doing.
func BenchmarkGatewayGET(b *testing.B) {
	for _, size := range []int{64, 16 << 10} {
		b.Run(fmt.Sprintf("body=%d", size), func(b *testing.B) {
			cb := newChainBench(b, size)
			defer cb.close()
			for i := 0; i < 100; i++ { // warm the pools and the connection
				cb.do(b)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cb.do(b)
			}
		})
	}
}

// fullChainAllocBudget is the allocation count per proxied GET through the
// full chain that docs/PERFORMANCE.md accounts for: none. The attempt
// Ticket, the exchange, the request id and the request path are pooled or
// kept in the Context's own buffers, and the breaker admits without
// gobreaker's closure; a change that adds an allocation to the hot path
// fails here instead of only showing in a benchmark nobody ran. The least
// of three measurements is taken, so a GC that empties the pools in one of
// them needs no headroom. The race detector's instrumentation makes more
// values escape, drops pooled objects at random and poisons released
// exchanges rather than reusing them, and CI runs with -race, so that
// build has its own budget.
const (
	fullChainAllocBudget     = 0
	fullChainAllocBudgetRace = 21
)

func TestFullChainGETStaysWithinAllocationBudget(t *testing.T) {
	cb := newChainBench(t, 64)
	defer cb.close()
	for i := 0; i < 50; i++ {
		cb.do(t)
	}
	budget := fullChainAllocBudget
	if raceDetector {
		budget = fullChainAllocBudgetRace
	}
	// The least of three measurements: a GC that empties the pools mid-run,
	// or the race detector's random sync.Pool drops, only ever add
	// allocations, while a regression on the hot path adds them to all three.
	n := testing.AllocsPerRun(200, func() { cb.do(t) })
	for range 2 {
		n = min(n, testing.AllocsPerRun(200, func() { cb.do(t) }))
	}
	t.Logf("%.1f allocations per GET (budget %d, race detector %v)", n, budget, raceDetector)
	if n > float64(budget) {
		t.Fatalf("a GET through the full chain allocates %.1f times, budget %d (see docs/PERFORMANCE.md)", n, budget)
	}
}

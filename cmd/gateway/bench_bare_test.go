package main

import (
	"bufio"
	"bytes"
	"testing"
)

// benchBareConfig is compare.sh's floodgate-bare: every built-in filter
// off, so only the proxy endpoint runs; its cost against BenchmarkGatewayGET
// is the chain's, its profile the proxy core's.
const benchBareConfig = `
server: {listen: "127.0.0.1:0"}
access_log: {enabled: false, options: {output: %q}}
request_id: {enabled: false}
passport: {enabled: false}
passport_header: {enabled: false}
shed_global: {enabled: false}
shed_origin: {enabled: false}
shed_origin_release: {enabled: false}
chaos_global: {enabled: false}
chaos_origin: {enabled: false}
metrics: {enabled: false}
origins:
  bench:
    instances: [{address: %q}]
    lb: p2c
    max_conns_per_instance: 1024
    adaptive_limit: {enabled: false}
routes:
  - name: bench
    match: {path_prefix: /}
    origin: bench
`

// BenchmarkGatewayGETBare is a GET through the bare gateway (the proxy
// endpoint alone) to a loopback origin, 64 B bodies.
func BenchmarkGatewayGETBare(b *testing.B) {
	cb := newChainBenchConfig(b, 64, benchBareConfig)
	defer cb.close()
	for i := 0; i < 100; i++ {
		cb.do(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cb.do(b)
	}
}

// parsedGET re-reads a GET from its wire bytes into the bench's request
// context, as fasthttp's server does for each request: such a GET has no
// Content-Length (-2), so the forwarder sends it in place
// (forwardInPlace), the path wrk's requests take, which the pre-built
// request of BenchmarkGatewayGET does not.
type parsedGET struct {
	raw []byte
	src *bytes.Reader
	br  *bufio.Reader
}

func newParsedGET() *parsedGET {
	raw := []byte("GET /64 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	src := bytes.NewReader(raw)
	return &parsedGET{raw: raw, src: src, br: bufio.NewReader(src)}
}

// do parses the request into cb and serves it.
func (p *parsedGET) do(tb testing.TB, cb *chainBench) {
	p.src.Reset(p.raw)
	p.br.Reset(p.src)
	cb.ctx.Request.Reset()
	if err := cb.ctx.Request.Read(p.br); err != nil {
		tb.Fatal(err)
	}
	cb.do(tb)
}

// BenchmarkGatewayGETParsed is BenchmarkGatewayGET/body=64 (and the bare
// gateway's) with the request parsed before each iteration, so it is
// forwarded in place.
func BenchmarkGatewayGETParsed(b *testing.B) {
	for _, bench := range []struct{ name, config string }{{"chain", benchChainConfig}, {"bare", benchBareConfig}} {
		b.Run(bench.name, func(b *testing.B) {
			cb := newChainBenchConfig(b, 64, bench.config)
			defer cb.close()
			p := newParsedGET()
			for i := 0; i < 100; i++ {
				p.do(b, cb)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.do(b, cb)
			}
		})
	}
}

// The allocation budget holds for a GET forwarded in place too.
func TestParsedGETForwardedInPlaceStaysWithinAllocationBudget(t *testing.T) {
	cb := newChainBench(t, 64)
	defer cb.close()
	p := newParsedGET()
	for i := 0; i < 50; i++ {
		p.do(t, cb)
	}
	// In place, the client's request is what went upstream: it carries
	// the forwarding headers afterwards (buildRequest leaves it as read).
	if len(cb.ctx.Request.Header.Peek("X-Forwarded-For")) == 0 {
		t.Fatal("the parsed GET was not forwarded in place; this test would measure buildRequest")
	}
	budget := fullChainAllocBudget
	if raceDetector {
		budget = fullChainAllocBudgetRace
	}
	n := testing.AllocsPerRun(200, func() { p.do(t, cb) })
	for range 2 {
		n = min(n, testing.AllocsPerRun(200, func() { p.do(t, cb) }))
	}
	t.Logf("%.1f allocations per GET forwarded in place (budget %d, race detector %v)", n, budget, raceDetector)
	if n > float64(budget) {
		t.Fatalf("a GET forwarded in place through the full chain allocates %.1f times, budget %d (see docs/PERFORMANCE.md)", n, budget)
	}
}

package main

import (
	"io"
	"strings"
	"testing"
)

// refusalChainConfig is benchChainConfig with chaos refusing every request
// (score 50) at once in shed_global: the path of a request the gateway
// refuses under overload (read, request id, scoring, the 503 with its
// headers, metrics, the access log's sampling), without the socket.
var refusalChainConfig = benchChainConfig + "  chaos: {enabled: true, min_score: 50, max_score: 100, fraction: 1}\n"

// BenchmarkGatewayRefusal is a refused GET through the full production
// chain, in process: with BenchmarkGatewayGET, the user-space part of what a
// refusal costs against a proxied request (the read and write system calls,
// most of both in a real server, are not in either; see
// TestShedExperimentRejectionCost in test/ for the whole process).
func BenchmarkGatewayRefusal(b *testing.B) {
	cb := newChainBenchConfig(b, 64, refusalChainConfig)
	defer cb.close()
	for range 100 {
		cb.refuse(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cb.refuse(b)
	}
}

// refuse serves one request and fails unless it was refused with a 503 that
// says why, with Retry-After.
func (b *chainBench) refuse(tb testing.TB) {
	b.handler(&b.ctx)
	if err := b.ctx.Response.Write(b.out); err != nil {
		tb.Fatal(err)
	}
	h := &b.ctx.Response.Header
	if code := b.ctx.Response.StatusCode(); code != 503 || len(h.Peek("Retry-After")) == 0 ||
		!strings.Contains(string(b.ctx.Response.Body()), "chaos") {
		tb.Fatalf("status %d, Retry-After %q: %s", code, h.Peek("Retry-After"), b.ctx.Response.Body())
	}
	b.out.Reset(io.Discard)
	b.ctx.Response.Reset()
}

package main

import (
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const hedgedConfig = `
server: {listen: "127.0.0.1:0"}
access_log: {enabled: false}
origins:
  pool:
    instances: [{address: %q}, {address: %q}]
    lb: round_robin
    hedge: {delay: 5ms}
    retry: {budget: {ratio: 1, min_per_second: 100, window: 10s}}
routes:
  - {name: pool, match: {path_prefix: /}, origin: pool}
`

// A hedged GET's losing attempt ends after the client has its answer and
// further requests have run on pooled exchanges and Tickets: it must still
// report through its own. The first attempt of the first request hangs
// until the client has the hedge's answer, then fails (an unparseable
// answer): the abandoning goroutine reports the failure through the
// exchange (Failure) and the attempt's Ticket. A stale Ticket fails the
// package (TestMain; a panic under -race); a report lost or sent elsewhere
// leaves an attempt in flight or the failure uncharged. That a forked
// exchange is never released is TestExchangeReleaseSparesForkedRuns.
func TestHedgedLoserOutlivesItsRequest(t *testing.T) {
	release := make(chan struct{})
	var hung atomic.Bool
	handler := func(ctx *fasthttp.RequestCtx) {
		if hung.CompareAndSwap(false, true) {
			// An answer fasthttp's client cannot parse, so it does not
			// retry it on another connection: the attempt fails.
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(c net.Conn) {
				<-release
				_, _ = c.Write([]byte("HTTP/1.1 bogus\r\n\r\n"))
			})
			return
		}
		ctx.SetBodyString("ok")
	}
	addrs := make([]string, 2)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &fasthttp.Server{Handler: handler}
		served := make(chan struct{})
		go func() { defer close(served); _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Shutdown(); <-served })
		addrs[i] = ln.Addr().String()
	}
	a, _ := startAppWith(t, fmt.Sprintf(hedgedConfig, addrs[0], addrs[1]))
	a.rt.attach(a.server)
	o, ok := a.rt.origins.Get("pool")
	if !ok {
		t.Fatal("no origin pool")
	}
	h := a.server.Handler()
	get := func() {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		req.SetRequestURI("/x")
		req.Header.SetHost("pool.example")
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
		h(&ctx)
		if code := ctx.Response.StatusCode(); code != 200 {
			t.Fatalf("status %d: %s", code, ctx.Response.Body())
		}
	}
	get()
	if !hung.Load() {
		t.Fatal("no attempt hung: the first request was not hedged")
	}
	if o.InFlight() != 1 {
		t.Fatalf("%d attempts in flight after the hedged answer, want the hung loser", o.InFlight())
	}
	close(release)
	for range 50 {
		get()
	}
	deadline := time.Now().Add(5 * time.Second)
	for o.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the loser was never reported: %d attempts in flight", o.InFlight())
		}
		time.Sleep(time.Millisecond)
	}
	var failures uint64
	for _, in := range o.Instances() {
		failures += in.Failures()
	}
	if failures != 1 {
		t.Fatalf("%d failures charged, want the loser's 1", failures)
	}
}

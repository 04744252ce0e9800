package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestOriginFailuresMapToStatusAndCategory(t *testing.T) {
	release := make(chan struct{})
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/slow":
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		case "/500":
			ctx.SetStatusCode(500)
			ctx.SetBodyString("boom")
		case "/reset":
			// Drop the connection without a response.
			ctx.Conn().Close()
		case "/short":
			// Announce 100 bytes, send a few, drop the connection. The body
			// is small enough to be read whole before the client hears
			// anything, so the client gets a clean 502, not a truncated 200.
			ctx.Conn().Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part"))
			ctx.Conn().Close()
		default:
			ctx.SetBodyString("ok")
		}
	})
	// Cleanups run last-in first-out: unblock /slow before the origin stops.
	t.Cleanup(func() { close(release) })
	// A port nobody listens on: bind, note it, close.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()

	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  live:
    instances: [{address: %q}]
    timeouts: {connect: 500ms, response: 300ms}
  dead:
    instances: [{address: %q}]
    timeouts: {connect: 500ms}
routes:
  - {name: dead, match: {path_prefix: /dead}, origin: dead}
  - {name: live, match: {path_prefix: /}, origin: live}
`, o.addr, dead))
	c := httpClient(t)
	for _, tc := range []struct {
		method, path string
		status       int
		category     string
	}{
		{"GET", "/dead/x", 502, "origin_connect_error"},
		{"GET", "/slow", 504, "origin_timeout"},
		{"GET", "/reset", 502, "origin_reset"},
		{"POST", "/reset", 502, "origin_reset"},
		{"GET", "/short", 502, "origin_reset"},
		{"GET", "/500", 500, "origin_5xx"},
		{"GET", "/fine", 200, "success"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+gw.addr+tc.path, strings.NewReader(""))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("X-Floodgate-Status") != tc.category {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode,
				resp.Header.Get("X-Floodgate-Status"), tc.status, tc.category)
		}
	}
}

func TestServerSentEventsAreFlushedPerEvent(t *testing.T) {
	next := make(chan struct{})
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for i := 1; i <= 3; i++ {
				fmt.Fprintf(w, "data: event %d\n\n", i)
				if w.Flush() != nil {
					return
				}
				// The next event is only produced once the client has
				// seen this one: a gateway that buffers deadlocks here.
				select {
				case <-next:
				case <-time.After(5 * time.Second):
					return
				}
			}
		})
	})
	gw := startGateway(t, baseConfig(o.addr, ""))
	c := httpClient(t)
	resp, err := c.Get("http://" + gw.addr + "/o/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 3; i++ {
		got := make(chan string, 1)
		go func() {
			line, _ := br.ReadString('\n')
			_, _ = br.ReadString('\n') // blank line ending the event
			got <- line
		}()
		select {
		case line := <-got:
			if want := fmt.Sprintf("data: event %d\n", i); line != want {
				t.Fatalf("event %d: got %q", i, line)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("event %d not delivered before the next was produced: the gateway buffers the stream", i)
		}
		next <- struct{}{}
	}
}

func TestOriginClosingIdleKeepAliveIsInvisible(t *testing.T) {
	closed := make(chan struct{}, 16)
	o := startOrigin(t, echoHandler, func(s *fasthttp.Server) {
		s.IdleTimeout = 100 * time.Millisecond
		s.ConnState = func(_ net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateClosed {
				select {
				case closed <- struct{}{}:
				default:
				}
			}
		}
	})
	gw := startGateway(t, baseConfig(o.addr, "")+"")
	c := httpClient(t)
	big := strings.Repeat("p", 200<<10) // streamed, beyond the buffered limit
	for i, tc := range []struct{ method, body string }{
		{"GET", ""}, {"POST", "small body"}, {"POST", big}, {"DELETE", ""}, {"PATCH", "x"},
	} {
		// Warm a pooled connection, then wait until the origin has closed
		// it while idle: the next request meets a dead pooled connection.
		if resp, err := c.Get("http://" + gw.addr + "/o/warm"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("origin never closed its idle connection")
		}
		req, _ := http.NewRequest(tc.method, "http://"+gw.addr+"/o/after-idle", strings.NewReader(tc.body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("case %d %s: %v", i, tc.method, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("case %d %s after idle close: %d %s %s", i, tc.method, resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body)
		}
		if e := decodeEcho(t, string(body)); e.BodyLen != int64(len(tc.body)) {
			t.Fatalf("case %d: origin saw %d body bytes, want %d", i, e.BodyLen, len(tc.body))
		}
	}
}

func TestRetryableStatusPassesThroughWhenNoOtherInstance(t *testing.T) {
	unavailable := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(503)
		ctx.Response.Header.Set("Retry-After", "7")
		ctx.SetBodyString("origin is draining")
	})
	healthy := startOrigin(t, echoHandler)
	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  lone:
    instances: [{address: %q}]
  pair:
    instances: [{address: %q}, {address: %q}]
    lb: round_robin
routes:
  - {name: lone, match: {path_prefix: /lone}, origin: lone}
  - {name: pair, match: {path_prefix: /pair}, origin: pair}
`, unavailable.addr, unavailable.addr, healthy.addr))
	c := httpClient(t)
	// One instance: nothing to retry on, so the client sees the origin's
	// own 503 and its Retry-After, not a gateway-made error.
	resp, body := get(t, c, "http://"+gw.addr+"/lone/x")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" || body != "origin is draining" ||
		resp.Header.Get("X-Floodgate-Status") != "origin_5xx" {
		t.Fatalf("lone 503: %d %q %q %v", resp.StatusCode, body, resp.Header.Get("X-Floodgate-Status"), resp.Header)
	}
	// Two instances: a GET that meets the 503 is retried on the other.
	for i := 0; i < 4; i++ {
		resp, body = get(t, c, "http://"+gw.addr+"/pair/x")
		if resp.StatusCode != 200 {
			t.Fatalf("pair request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	// A POST is not idempotent: never retried, the 503 passes through.
	presp, err := c.Post("http://"+gw.addr+"/lone/x", "text/plain", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, presp.Body)
	presp.Body.Close()
	if presp.StatusCode != 503 {
		t.Fatalf("POST: %d", presp.StatusCode)
	}
}

// After an idle period every pooled connection may have been closed by the
// origin. However many there are, the next requests must all succeed: each
// stale connection is found before anything is sent and skipped.
func TestPoolFullOfIdleClosedConnectionsIsInvisible(t *testing.T) {
	const conns = 16
	arrived := make(chan struct{}, conns)
	release := make(chan struct{})
	var holding atomic.Bool
	holding.Store(true)
	closed := make(chan struct{}, 4*conns)
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		if holding.Load() {
			arrived <- struct{}{}
			<-release
		}
		ctx.SetBodyString("ok")
	}, func(s *fasthttp.Server) {
		s.IdleTimeout = 100 * time.Millisecond
		s.ConnState = func(_ net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateClosed {
				closed <- struct{}{}
			}
		}
	})
	gw := startGateway(t, baseConfig(o.addr, ""))
	c := httpClient(t)

	// Hold conns requests at the origin at once, so the gateway opens conns
	// connections, then let them finish and sit idle in its pool.
	done := make(chan int, conns)
	for i := 0; i < conns; i++ {
		go func() {
			resp, err := c.Get("http://" + gw.addr + "/o/warm")
			if err != nil {
				done <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	for i := 0; i < conns; i++ {
		<-arrived
	}
	holding.Store(false)
	close(release)
	for i := 0; i < conns; i++ {
		if s := <-done; s != 200 {
			t.Fatalf("warm-up request: %d", s)
		}
	}
	for i := 0; i < conns; i++ {
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("origin closed only %d of %d idle connections", i, conns)
		}
	}
	for i := 0; i < conns; i++ {
		resp, body := get(t, c, "http://"+gw.addr+"/o/after")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d after the origin closed the whole pool: %d %s %s", i, resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body)
		}
	}
	if o, ok := gw.reg.Get("backend"); ok {
		for _, in := range o.Instances() {
			if in.Failures() != 0 {
				t.Fatalf("stale pooled connections were charged to the instance: %d failures", in.Failures())
			}
		}
	}
}

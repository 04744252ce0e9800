package fuzz

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters/accesslog"
	"github.com/floodgate-dev/floodgate/filters/metrics"
	"github.com/floodgate-dev/floodgate/filters/shed"
	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/proxy"
)

// markerHeader carries the iteration number on every request the harness
// sends. A request reaching the origin without it was smuggled (made up
// from another request's bytes); one arriving twice was duplicated.
const markerHeader = "X-Fuzz-Iter"

// strictOrigin parses what the gateway sends with Go's net/http parser and
// records every request by its marker; anything it cannot parse is a
// malformed upstream message.
type strictOrigin struct {
	ln        net.Listener
	wg        sync.WaitGroup
	mu        sync.Mutex
	seen      map[string]int
	unmarked  []string
	malformed []string
}

func startStrictOrigin(tb testing.TB) *strictOrigin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o := &strictOrigin{ln: ln, seen: map[string]int{}}
	var conns sync.Map
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				o.serve(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		o.wg.Wait()
	})
	return o
}

func (o *strictOrigin) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if err != io.EOF && !isClosed(err) {
				o.mu.Lock()
				o.malformed = append(o.malformed, err.Error())
				o.mu.Unlock()
			}
			return
		}
		_, bodyErr := io.Copy(io.Discard, req.Body)
		o.mu.Lock()
		if m := req.Header.Get(markerHeader); m != "" {
			o.seen[m]++
		} else {
			o.unmarked = append(o.unmarked, req.Method+" "+req.RequestURI)
		}
		o.mu.Unlock()
		if bodyErr != nil {
			return // the gateway gave up on the body (client error): fine
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

func isClosed(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection") || strings.Contains(err.Error(), "connection reset")
}

// check fails on any invariant the origin has seen broken so far.
func (o *strictOrigin) check(t *testing.T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.unmarked) > 0 {
		t.Fatalf("a request reached the origin that the client never sent as one (smuggled): %q", o.unmarked)
	}
	if len(o.malformed) > 0 {
		t.Fatalf("the gateway sent the origin a message a strict parser refuses: %q", o.malformed)
	}
	for m, n := range o.seen {
		if n > 1 {
			t.Fatalf("request %s reached the origin %d times", m, n)
		}
	}
}

// panicWatch is a slog handler that counts logged panics: the driver
// recovers them into 500s, but each one is a bug.
type panicWatch struct{ n *atomic.Int64 }

func (p panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (p panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.n.Add(1)
	}
	return nil
}
func (p panicWatch) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p panicWatch) WithGroup(string) slog.Handler      { return p }

// startGateway runs the gateway in-process as cmd/gateway wires it, with
// short timeouts so a fuzz input that stalls costs little.
func startGateway(tb testing.TB, originAddr string, panics *atomic.Int64) string {
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {listen: "127.0.0.1:0", read_header_timeout: 300ms, body_timeout: 300ms, max_body_size: 64KiB, write_progress_timeout: 1s}
origins:
  o:
    instances: [{address: %q}]
    timeouts: {connect: 500ms, response: 1s}
    breaker: {consecutive_failures: 1000000, failure_ratio: 0}
    retry: {attempts: 1}
routes: [{name: all, match: {path_prefix: /}, origin: o}]
`, originAddr)), "fuzz")
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(panicWatch{panics})
	b := proxy.NewBuilder(logger)
	reg, err := origins.NewRegistry(cfg.Origins, origins.Options{Logger: logger})
	if err != nil {
		tb.Fatal(err)
	}
	shedder, err := loadshed.New(cfg.LoadShed)
	if err != nil {
		tb.Fatal(err)
	}
	m := metrics.New()
	proxy.OriginsKey.Provide(b.Services, reg)
	proxy.ObserverKey.Provide(b.Services, m)
	shed.ShedderKey.Provide(b.Services, shedder)
	metrics.ServiceKey.Provide(b.Services, m)
	outputs := accesslog.NewOutputs(io.Discard, io.Discard)
	accesslog.OutputsKey.Provide(b.Services, outputs)
	snap, err := b.Build(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := proxy.NewServer(b, snap, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		reg.Close()
		b.Close()
		shedder.Close()
		outputs.Close()
	})
	return ln.Addr().String()
}

// FuzzRequestFraming sends one request (a fuzzed head, a fuzzed body) to a
// real gateway on loopback and checks: the gateway does not panic, answers
// with well-formed HTTP (at most one response, since the harness asks for
// the connection to close), and the origin receives at most that one
// request, parsed as exactly one by a strict parser.
func FuzzRequestFraming(f *testing.F) {
	// The seed corpus is testdata/fuzz/FuzzRequestFraming (see seeds).
	o := startStrictOrigin(f)
	var panics atomic.Int64
	addr := startGateway(f, o.ln.Addr().String(), &panics)
	var iter atomic.Int64
	f.Fuzz(func(t *testing.T, head string, body []byte) {
		if strings.Contains(head, "\r\n\r\n") || strings.Contains(head, "\n\n") ||
			strings.Contains(strings.ToLower(head), strings.ToLower(markerHeader)) || len(head) > 8<<10 {
			return // not a single request head, or one that could hide the marker
		}
		n := strconv.FormatInt(iter.Add(1), 10)
		req := strings.TrimRight(head, "\r\n") + "\r\n" + markerHeader + ": " + n + "\r\nConnection: close\r\n\r\n"
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			_, _ = io.WriteString(conn, req)
			_, _ = conn.Write(body)
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}()
		br := bufio.NewReader(conn)
		responses := 0
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("the gateway neither answered nor closed within 5s")
				}
				if err != io.EOF && !isClosed(err) && responses == 0 && !strings.Contains(err.Error(), "EOF") {
					t.Fatalf("malformed response: %v", err)
				}
				break
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 200 { // 100 Continue is interim
				responses++
			}
		}
		if responses > 1 {
			t.Fatalf("%d responses to one request", responses)
		}
		if p := panics.Load(); p > 0 {
			t.Fatalf("the gateway recovered %d panics", p)
		}
		o.check(t)
	})
}

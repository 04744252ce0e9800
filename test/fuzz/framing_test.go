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
func startGateway(tb testing.TB, originAddr string, panics *atomic.Int64) (string, *proxy.Server) {
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
	return ln.Addr().String(), srv
}

// endsHeadEarly reports whether head holds a blank line before its end, so
// the client itself would send a complete request without the marker and
// the rest as a second one. Both fasthttp and net/http accept a bare LF as
// a line end, so "\n\r\n" ends a head just as "\r\n\r\n" and "\n\n" do.
func endsHeadEarly(head string) bool {
	lines := strings.Split(strings.TrimRight(head, "\r\n"), "\n")
	for _, line := range lines[1:] {
		if strings.TrimRight(line, "\r") == "" {
			return true
		}
	}
	return false
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
	addr, srv := startGateway(f, o.ln.Addr().String(), &panics)
	gatewayIdle := func() bool { return srv.OpenConnections() == 0 && srv.InFlight() == 0 }
	var iter atomic.Int64
	f.Fuzz(func(t *testing.T, head string, body []byte) {
		if endsHeadEarly(head) ||
			strings.Contains(strings.ToLower(head), strings.ToLower(markerHeader)) || len(head) > 8<<10 {
			return // not a single request head, or one that could hide the marker
		}
		o.reset()
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
		// Everything this input made the gateway send is recorded before
		// the checks, so a late arrival is charged to this input.
		conn.Close()
		o.waitIdle(t, gatewayIdle)
		// What the origin saw first: it carries the raw bytes.
		o.check(t)
		if responses > 1 {
			t.Fatalf("%d responses to one request", responses)
		}
		if p := panics.Load(); p > 0 {
			t.Fatalf("the gateway recovered %d panics", p)
		}
	})
}

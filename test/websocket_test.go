package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/proxy"
)

// WebSocket through a real gateway (proxy.NewServer, the production
// server options) against a real WebSocket origin: github.com/coder/websocket
// on net/http, a maintained implementation independent of the gateway's
// byte relay, used on both ends.

// wsOrigin is a WebSocket origin. /ws/echo echoes every message (a text
// "close <code>" makes it close with that code, "crash" resets its TCP
// connection), /ws/deny refuses the handshake with 403, /ws/hello sends
// a message first. Every handler end is reported on ended.
type wsOrigin struct {
	addr       string
	requests   atomic.Int64
	handshakes chan http.Header
	// ended receives how each echo session ended: the close status the
	// client sent, or -1 when the connection ended without one.
	ended chan websocket.StatusCode
}

type connKey struct{}

func startWSOrigin(t *testing.T) *wsOrigin {
	t.Helper()
	o, _ := startWSOriginServer(t, false)
	return o
}

// startWSOriginServer starts the origin, over TLS (httptest's certificate
// for 127.0.0.1) when useTLS is set.
func startWSOriginServer(t *testing.T, useTLS bool) (*wsOrigin, *httptest.Server) {
	t.Helper()
	o := &wsOrigin{handshakes: make(chan http.Header, 64), ended: make(chan websocket.StatusCode, 64)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	o.addr = srv.Listener.Addr().String()
	return o, srv
}

func (o *wsOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	if r.Header.Get("Upgrade") != "" {
		select {
		case o.handshakes <- r.Header.Clone():
		default:
		}
	}
	switch r.URL.Path {
	case "/ws/deny":
		w.Header().Set("X-Origin-Reason", "no ticket")
		http.Error(w, "no entry without a ticket", http.StatusForbidden)
		return
	case "/ws/echo", "/ws/hello", "/crit/echo", "/low/echo":
	default:
		_, _ = io.WriteString(w, "plain")
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	ctx := r.Context()
	if r.URL.Path == "/ws/hello" {
		if err := c.Write(ctx, websocket.MessageText, []byte("hello from the origin")); err != nil {
			c.CloseNow()
			o.ended <- -1
			return
		}
	}
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			o.ended <- websocket.CloseStatus(err)
			c.CloseNow()
			return
		}
		switch {
		case typ == websocket.MessageText && bytes.HasPrefix(msg, []byte("close ")):
			var code int
			fmt.Sscanf(string(msg), "close %d", &code)
			c.Close(websocket.StatusCode(code), "origin closes")
			o.ended <- websocket.StatusCode(code)
			return
		case typ == websocket.MessageText && string(msg) == "crash":
			// A crash: the connection is reset, no close frame.
			raw := ctx.Value(connKey{}).(net.Conn)
			if tc, ok := raw.(*tls.Conn); ok {
				raw = tc.NetConn()
			}
			_ = raw.(*net.TCPConn).SetLinger(0)
			_ = raw.Close()
			c.CloseNow()
			o.ended <- -1
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			o.ended <- websocket.CloseStatus(err)
			c.CloseNow()
			return
		}
	}
}

// awaitEnd returns how the next echo session ended.
func (o *wsOrigin) awaitEnd(t *testing.T) websocket.StatusCode {
	t.Helper()
	select {
	case code := <-o.ended:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("the origin's WebSocket session did not end")
		return 0
	}
}

// wsConfig routes /ws, /crit and /low to the WebSocket origin, /off to it
// with WebSocket turned off, /healthz to a static answer. tunnel is the
// startWSTunnelSetup starts a WebSocket origin and a gateway in front of it
// with the given server.tunnel settings, and a context that ends after d
// (cancelled when the test ends).
func startWSTunnelSetup(t *testing.T, tunnel string, d time.Duration) (*wsOrigin, *inproc, context.Context) {
	t.Helper()
	o := startWSOrigin(t)
	gw := startGateway(t, wsConfig(o.addr, tunnel, ""))
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return o, gw, ctx
}

// server.tunnel section.
func wsConfig(originAddr, tunnel, extra string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tunnel: %s
origins:
  ws:
    instances: [{address: %q}]
    timeouts: {connect: 500ms, response: 2s}
routes:
  - name: health
    match: {path: /healthz}
    static: {status: 200, body: ok}
  - name: ws-off
    match: {path_prefix: /off}
    rewrite: {strip_prefix: /off}
    origin: ws
    websocket: false
  - name: ws
    match: {path_prefix: /}
    origin: ws
%s`, tunnel, originAddr, extra)
}

func dialWS(t *testing.T, ctx context.Context, addr, path string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, "ws://"+addr+path, &websocket.DialOptions{
		HTTPClient:      httpClient(t),
		CompressionMode: websocket.CompressionDisabled,
	})
	if c != nil {
		c.SetReadLimit(1 << 20)
	}
	return c, resp, err
}

func mustDialWS(t *testing.T, ctx context.Context, addr, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := dialWS(t, ctx, addr, path)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	return c
}

// tunnelSeries reads one tunnel metric's value (a gauge or counter; for a
// histogram, its sample count) from the gateway's registry.
func tunnelSeries(t *testing.T, gw *inproc, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := gw.m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if labelValue(m, k) != v {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func awaitNoTunnels(t *testing.T, gw *inproc) {
	t.Helper()
	eventually(t, 5*time.Second, "every tunnel closed", func() bool {
		return gw.server.OpenTunnels() == 0 && tunnelSeries(t, gw, "floodgate_tunnels_open", map[string]string{"route": "ws"}) == 0
	})
}

// 10,000 messages, text and binary, of sizes from 1 byte to 64 KiB, come
// back intact and in order, with pings answered in between; the handshake
// reaches the origin with its upgrade headers; the tunnel is counted while
// open and its bytes and duration once closed; it holds no in-flight slot.
func TestWebSocketEchoesTenThousandMessagesWithPings(t *testing.T) {
	o, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 1m}", 60*time.Second)
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()

	h := <-o.handshakes
	for _, k := range []string{"Sec-Websocket-Key", "Sec-Websocket-Version"} {
		if h.Get(k) == "" {
			t.Errorf("origin got no %s: %v", k, h)
		}
	}
	if !strings.EqualFold(h.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade") {
		t.Errorf("origin got Upgrade %q Connection %q", h.Get("Upgrade"), h.Get("Connection"))
	}
	if h.Get("X-Forwarded-For") == "" || h.Get("Via") == "" {
		t.Errorf("forwarding headers missing on the handshake: %v", h)
	}
	if got := gw.server.OpenTunnels(); got != 1 {
		t.Errorf("open tunnels = %d, want 1", got)
	}
	if got := gw.server.InFlight(); got != 0 {
		t.Errorf("an open tunnel holds %d in-flight requests, want 0", got)
	}
	if got := tunnelSeries(t, gw, "floodgate_tunnels_open", map[string]string{"route": "ws"}); got != 1 {
		t.Errorf("floodgate_tunnels_open{route=ws} = %v, want 1", got)
	}

	const n = 10000
	message := func(i int) (websocket.MessageType, []byte) {
		size := 1 + (i*7919)%2048
		if i%1000 == 999 {
			size = 64 << 10
		}
		p := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		copy(p, fmt.Sprintf("#%d#", i))
		if i%2 == 0 {
			return websocket.MessageText, p
		}
		return websocket.MessageBinary, p
	}
	// Echoes are read on their own goroutine so pings (whose pongs the
	// reader processes) can be sent while messages are in flight.
	readErr := make(chan error, 1)
	var sent int64
	go func() {
		for i := 0; i < n; i++ {
			typ, got, err := c.Read(ctx)
			if err != nil {
				readErr <- fmt.Errorf("reading echo %d: %w", i, err)
				return
			}
			wantTyp, want := message(i)
			if typ != wantTyp || !bytes.Equal(got, want) {
				readErr <- fmt.Errorf("echo %d: got %v of %d bytes, want %v of %d", i, typ, len(got), wantTyp, len(want))
				return
			}
		}
		readErr <- nil
	}()
	pings := 0
	for i := 0; i < n; i++ {
		typ, p := message(i)
		if err := c.Write(ctx, typ, p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		sent += int64(len(p))
		if i%1000 == 500 {
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("ping after message %d: %v", i, err)
			}
			pings++
		}
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if code := o.awaitEnd(t); code != websocket.StatusNormalClosure {
		t.Errorf("origin saw close %v, want 1000", code)
	}
	awaitNoTunnels(t, gw)
	for _, dir := range []string{"to_origin", "to_client"} {
		if got := tunnelSeries(t, gw, "floodgate_tunnel_bytes_total", map[string]string{"route": "ws", "direction": dir}); got < float64(sent) {
			t.Errorf("floodgate_tunnel_bytes_total{direction=%s} = %v, want at least the %d payload bytes", dir, got, sent)
		}
	}
	if got := tunnelSeries(t, gw, "floodgate_tunnel_duration_seconds", map[string]string{"route": "ws"}); got != 1 {
		t.Errorf("floodgate_tunnel_duration_seconds count = %v, want 1", got)
	}
	t.Logf("%d messages (%d payload bytes) echoed with %d pings", n, sent, pings)
}

// A close code goes through in both directions, with its reason.
func TestWebSocketCloseCodesRelayedBothWays(t *testing.T) {
	o, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 1m}", 20*time.Second)

	// Client to origin.
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	if err := c.Close(websocket.StatusCode(4001), "client leaves"); err != nil {
		t.Fatalf("client close: %v", err)
	}
	if code := o.awaitEnd(t); code != 4001 {
		t.Errorf("origin saw close %v, want 4001", code)
	}

	// Origin to client.
	c = mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("close 4002")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Reason != "origin closes" {
		t.Errorf("client read after the origin closed: %v, want close 4002 \"origin closes\"", err)
	}
	o.awaitEnd(t)
	awaitNoTunnels(t, gw)
}

// An origin's refusal of the handshake reaches the client as a normal
// response, body and headers included; no tunnel opens.
func TestWebSocketOriginRefusalRelayed(t *testing.T) {
	_, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 1m}", 10*time.Second)
	_, resp, err := dialWS(t, ctx, gw.addr, "/ws/deny")
	if err == nil || resp == nil {
		t.Fatalf("dial succeeded or gave no response: %v", err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want the origin's 403", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Origin-Reason"); got != "no ticket" {
		t.Errorf("X-Origin-Reason = %q", got)
	}
	if got := resp.Header.Get("X-Floodgate-Status"); got != "success" {
		t.Errorf("X-Floodgate-Status = %q, want success (the origin answered)", got)
	}
	if got := gw.server.OpenTunnels(); got != 0 {
		t.Errorf("open tunnels = %d after a refused handshake", got)
	}
	// The refusal's connection is not reused: a plain request still works
	// and is answered by the origin's HTTP side.
	resp2, body := raw(t, gw.addr, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp2.StatusCode != 200 || body != "plain" {
		t.Errorf("plain request after a refusal: %d %q", resp2.StatusCode, body)
	}
}

// An origin that dies mid-tunnel (connection reset) is seen by the client
// at once, not after the idle timeout.
func TestWebSocketOriginCrashReachesClientPromptly(t *testing.T) {
	o, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 1m}", 20*time.Second)
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("crash")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, _, err := c.Read(ctx)
	if err == nil {
		t.Fatal("read succeeded after the origin crashed")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("client saw the crash after %v (idle timeout is 1m)", d)
	}
	o.awaitEnd(t)
	awaitNoTunnels(t, gw)
}

// A client that vanishes (TCP closed, no close frame) ends the origin's
// session and the tunnel.
func TestWebSocketClientVanishing(t *testing.T) {
	o, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 1m}", 20*time.Second)
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if code := o.awaitEnd(t); code != -1 {
		t.Errorf("origin saw close %v, want none (the client vanished)", code)
	}
	awaitNoTunnels(t, gw)
}

// A tunnel with no traffic either way is closed after
// server.tunnel.idle_timeout.
func TestWebSocketIdleTimeout(t *testing.T) {
	o, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 300ms}", 20*time.Second)
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()
	// The last byte crosses the gateway after t0, so the tunnel cannot
	// close sooner than the idle timeout after t0.
	t0 := time.Now()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	d := time.Since(t0)
	if err == nil {
		t.Fatal("read succeeded on an idle tunnel")
	}
	if d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("idle tunnel closed after %v, want about 300ms", d)
	}
	o.awaitEnd(t)
	awaitNoTunnels(t, gw)
}

// A busy tunnel is still closed at server.tunnel.max_lifetime.
func TestWebSocketMaxLifetime(t *testing.T) {
	o, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 1m, max_lifetime: 400ms}", 20*time.Second)
	t0 := time.Now()
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()
	echoes := 0
	for {
		if err := c.Write(ctx, websocket.MessageText, []byte("busy")); err != nil {
			break
		}
		if _, _, err := c.Read(ctx); err != nil {
			break
		}
		echoes++
	}
	d := time.Since(t0)
	if d < 400*time.Millisecond || d > 5*time.Second {
		t.Errorf("busy tunnel closed after %v, want about 400ms", d)
	}
	if echoes < 2 {
		t.Errorf("only %d echoes: the tunnel was not busy", echoes)
	}
	o.awaitEnd(t)
	awaitNoTunnels(t, gw)
}

// Upgrades to anything but WebSocket are refused with 501 and
// upgrade_refused (never forwarded as a plain request), and so is
// WebSocket on a route that turns it off or cannot carry it.
func TestUpgradeRefusals(t *testing.T) {
	o := startWSOrigin(t)
	gw := startGateway(t, wsConfig(o.addr, "{idle_timeout: 1m}", ""))
	handshake := "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	tests := []struct {
		name, request string
		status        int
		category      string
		reason        string
	}{
		{"h2c", "GET /ws/echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
			501, "upgrade_refused", `upgrade to "h2c" is not supported`},
		{"unknown protocol", "GET /ws/echo HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: foo/2, websocket\r\n\r\n",
			501, "upgrade_refused", `upgrade to "foo/2, websocket" is not supported`},
		{"websocket off on the route", "GET /off/ws/echo HTTP/1.1\r\nHost: x\r\n" + handshake,
			501, "upgrade_refused", "route ws-off has websocket: false"},
		{"static route", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + handshake,
			501, "upgrade_refused", "route health (static endpoint) does not carry WebSocket"},
		{"Upgrade without Connection: upgrade", "GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
			400, "client_error", "Upgrade: websocket without Connection: upgrade"},
		{"POST handshake", "POST /ws/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" + handshake,
			400, "client_error", "a WebSocket handshake must be a GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := o.requests.Load()
			resp, body := raw(t, gw.addr, tt.request)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("X-Floodgate-Status"); got != tt.category {
				t.Errorf("X-Floodgate-Status = %q, want %q", got, tt.category)
			}
			if !strings.Contains(body, tt.reason) {
				t.Errorf("body %q does not say %q", body, tt.reason)
			}
			if !resp.Close {
				t.Error("a refused upgrade must close the connection")
			}
			if n := o.requests.Load() - before; n != 0 {
				t.Errorf("the origin received %d requests", n)
			}
		})
	}
}

// Bytes the client sends right behind its handshake (in the same write,
// buffered by the server before the tunnel exists) and bytes the origin
// sends right behind its 101 both arrive.
func TestWebSocketBytesRightAfterHandshakeKept(t *testing.T) {
	o := startWSOrigin(t)
	gw := startGateway(t, wsConfig(o.addr, "{idle_timeout: 1m}", ""))
	conn, err := net.DialTimeout("tcp", gw.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	frame := maskedTextFrame("early bird")
	req := "GET /ws/hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	want := [][]byte{[]byte("HTTP/1.1 101 Switching Protocols\r\n"), unmaskedTextFrame("hello from the origin"), unmaskedTextFrame("early bird")}
	buf := make([]byte, 4096)
	for !containsAll(got.Bytes(), want) {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read: %v; got %q", err, got.String())
		}
	}
	head := got.String()
	if i := strings.Index(head, "\r\n\r\n"); i >= 0 {
		head = head[:i]
	}
	// net/http spells the origin's header Sec-Websocket-Accept; the
	// gateway keeps names as sent, so compare without case.
	for _, h := range []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "X-Floodgate-Status: success"} {
		if !strings.Contains(strings.ToLower(head), strings.ToLower(h)) {
			t.Errorf("101 lacks %q:\n%s", h, head)
		}
	}
	if strings.Contains(strings.ToLower(head), "content-length") || strings.Contains(strings.ToLower(head), "transfer-encoding") {
		t.Errorf("101 carries framing headers:\n%s", head)
	}
	conn.Close()
	o.awaitEnd(t)
	awaitNoTunnels(t, gw)
}

// maskedTextFrame is a client-to-server text frame (RFC 6455 5.2),
// payload under 126 bytes.
func maskedTextFrame(payload string) []byte {
	key := []byte{1, 2, 3, 4}
	f := []byte{0x81, 0x80 | byte(len(payload))}
	f = append(f, key...)
	for i := 0; i < len(payload); i++ {
		f = append(f, payload[i]^key[i%4])
	}
	return f
}

func unmaskedTextFrame(payload string) []byte {
	return append([]byte{0x81, byte(len(payload))}, payload...)
}

func containsAll(b []byte, parts [][]byte) bool {
	for _, p := range parts {
		if !bytes.Contains(b, p) {
			return false
		}
	}
	return true
}

// Handshakes are scored and shed like any request: under overload a low
// priority handshake gets 503 local_shed_global while a critical one opens,
// and an open tunnel does not count as an in-flight request.
func TestWebSocketHandshakeShedByPriority(t *testing.T) {
	o := startWSOrigin(t)
	release := make(chan struct{})
	held := make(chan struct{}, 8)
	slow := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		held <- struct{}{}
		<-release
		ctx.SetBodyString("slow")
	})
	extra := `
shed_global: {enabled: true}
loadshed:
  interval: 10ms
  scoring:
    rules:
      - {name: low, match: {path_prefixes: [/low]}, set: 90}
      - {name: crit, match: {path_prefixes: [/crit]}, set: 10}
  global:
    hysteresis: 0
    smoothing: {rise: 0s, fall: 0s}
    controller: {mode: proportional}
    signals:
      inflight: {enabled: true, threshold: 0, max: 4}
      connections: {enabled: false}
      cpu: {enabled: false}
`
	cfg := strings.Replace(wsConfig(o.addr, "{idle_timeout: 1m}", extra), "routes:\n", fmt.Sprintf(`  slow:
    instances: [{address: %q}]
    timeouts: {connect: 500ms, response: 30s}
routes:
  - name: slow
    match: {path_prefix: /slow}
    origin: slow
`, slow.addr), 1)
	gw := startGateway(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A critical tunnel opened before the overload holds no in-flight slot.
	open := mustDialWS(t, ctx, gw.addr, "/crit/echo")
	defer open.CloseNow()
	if got := gw.server.InFlight(); got != 0 {
		t.Fatalf("in flight with a tunnel open: %d, want 0", got)
	}

	// Two requests held at the slow origin: x = 2/4, cutoff 87.5, so
	// score 90 is shed and score 10 is not.
	c := httpClient(t)
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			resp, err := c.Get("http://" + gw.addr + "/slow")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	<-held
	<-held
	var shed *http.Response
	eventually(t, 5*time.Second, "a low-priority handshake is shed", func() bool {
		c, resp, err := dialWS(t, ctx, gw.addr, "/low/echo")
		if err == nil {
			c.Close(websocket.StatusNormalClosure, "")
			o.awaitEnd(t)
			return false
		}
		shed = resp
		return resp != nil && resp.StatusCode == http.StatusServiceUnavailable
	})
	if got := shed.Header.Get("X-Floodgate-Status"); got != "local_shed_global" {
		t.Errorf("shed handshake X-Floodgate-Status = %q", got)
	}
	crit := mustDialWS(t, ctx, gw.addr, "/crit/echo")
	if err := crit.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := crit.Read(ctx); err != nil || string(msg) != "still here" {
		t.Fatalf("critical tunnel under overload: %q %v", msg, err)
	}
	close(release)
	<-done
	<-done
	crit.Close(websocket.StatusNormalClosure, "")
	open.Close(websocket.StatusNormalClosure, "")
	o.awaitEnd(t)
	o.awaitEnd(t)
	awaitNoTunnels(t, gw)
}

// Shutdown: the server turns not ready at once while the tunnel keeps
// working through the drain; at the drain timeout the tunnel is closed.
func TestWebSocketDrainClosesTunnel(t *testing.T) {
	o, gw, ctx := startWSTunnelSetup(t, "{idle_timeout: 1m}", 20*time.Second)
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()

	admin := (&proxy.Admin{Server: gw.server}).Handler()
	readyz := func() int {
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz before shutdown: %d", code)
	}
	const drain = time.Second
	stopped := make(chan error, 1)
	t0 := time.Now()
	go func() {
		stopped <- gw.server.GracefulStop(context.Background(), 0, drain, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	eventually(t, 5*time.Second, "shutdown begins", gw.server.ShuttingDown)
	// Not ready from the start of the shutdown, while the tunnel still
	// carries messages.
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the drain with a tunnel open: %d, want 503", code)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("during drain")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "during drain" {
		t.Fatalf("echo during the drain: %q %v", msg, err)
	}
	if _, _, err := c.Read(ctx); err == nil {
		t.Fatal("the tunnel outlived the drain")
	}
	if d := time.Since(t0); d < drain || d > drain+5*time.Second {
		t.Errorf("tunnel closed %v after shutdown began, want just after the %v drain timeout", d, drain)
	}
	if err := <-stopped; !errors.Is(err, proxy.ErrDrainTimeout) {
		t.Errorf("GracefulStop = %v, want ErrDrainTimeout", err)
	}
	o.awaitEnd(t)
	awaitNoTunnels(t, gw)
}

// Either side's end of stream is passed on as a half-close: a client
// that shuts down its sending side still receives what the origin sends
// after seeing that end (how a close handshake finishes), then EOF. Bytes
// that travel in the same segment as the handshake (client) or the 101
// (origin) are relayed too.
func TestTunnelRelaysHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	originDone := make(chan error, 1)
	go func() {
		originDone <- func() error {
			conn, err := ln.Accept()
			if err != nil {
				return err
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			req, err := http.ReadRequest(br)
			if err != nil {
				return err
			}
			if req.Header.Get("Upgrade") != "websocket" {
				return fmt.Errorf("handshake without Upgrade: %v", req.Header)
			}
			// The first bytes ride in the same write as the 101.
			if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\norigin first; "); err != nil {
				return err
			}
			got, err := io.ReadAll(br) // until the client's half-close arrives
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(conn, "origin read %q", got); err != nil {
				return err
			}
			return conn.(*net.TCPConn).CloseWrite()
		}()
	}()
	t.Cleanup(func() { ln.Close() })
	gw := startGateway(t, wsConfig(ln.Addr().String(), "{idle_timeout: 1m}", ""))

	conn, err := net.DialTimeout("tcp", gw.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /ws/raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nfrom the client"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading after the half-close: %v", err)
	}
	if want := `origin first; origin read "from the client"`; string(rest) != want {
		t.Errorf("after the half-close the client got %q, want %q", rest, want)
	}
	if err := <-originDone; err != nil {
		t.Fatalf("origin: %v", err)
	}
	awaitNoTunnels(t, gw)
}

// A handshake to an instance that cannot be reached is a 502 with
// origin_connect_error, charged to the instance, and not retried on the
// other instance (an upgrade is never replayed).
func TestWebSocketHandshakeConnectErrorNotRetried(t *testing.T) {
	o := startWSOrigin(t)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	cfg := strings.Replace(wsConfig(o.addr, "{idle_timeout: 1m}", ""),
		fmt.Sprintf("instances: [{address: %q}]", o.addr),
		fmt.Sprintf("instances: [{address: %q}, {address: %q}]", deadAddr, o.addr), 1)
	gw := startGateway(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	failures, opened := 0, 0
	for range 20 {
		c, resp, err := dialWS(t, ctx, gw.addr, "/ws/echo")
		if err == nil {
			opened++
			c.Close(websocket.StatusNormalClosure, "")
			o.awaitEnd(t)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Floodgate-Status") != "origin_connect_error" {
			t.Fatalf("handshake failure: %v %v", resp, err)
		}
		failures++
	}
	if failures == 0 || opened == 0 {
		t.Errorf("%d connect failures and %d tunnels: want both (the dead instance is picked sometimes and never retried)", failures, opened)
	}
	var deadFailures uint64
	origin, ok := gw.reg.Get("ws")
	if !ok {
		t.Fatal("origin ws not registered")
	}
	for _, in := range origin.Instances() {
		if in.Addr() == deadAddr {
			deadFailures = in.Failures()
		}
	}
	if deadFailures == 0 {
		t.Error("the dead instance was not charged with the failed handshakes")
	}
	awaitNoTunnels(t, gw)
}

// A 101 that switches to another protocol than the websocket the client
// asked for is refused (502 origin_bad_response), never tunnelled.
func TestWebSocketOriginSwitchingToAnotherProtocolRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closed := make(chan error, 1)
	go func() {
		closed <- func() error {
			conn, err := ln.Accept()
			if err != nil {
				return err
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			if _, err := http.ReadRequest(br); err != nil {
				return err
			}
			if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"); err != nil {
				return err
			}
			// The gateway must drop this connection, not tunnel it.
			if _, err := br.ReadByte(); err != io.EOF {
				return fmt.Errorf("after the wrong 101 the origin connection gave %v, want EOF", err)
			}
			return nil
		}()
	}()
	gw := startGateway(t, wsConfig(ln.Addr().String(), "{idle_timeout: 1m}", ""))
	resp, body := raw(t, gw.addr, "GET /ws/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Floodgate-Status") != "origin_bad_response" {
		t.Errorf("got %d %s %q, want 502 origin_bad_response", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := gw.server.OpenTunnels(); n != 0 {
		t.Errorf("%d tunnels open", n)
	}
}

// The gateway binary: its wiring reports tunnel metrics on /metrics, the
// handshake is in the access log as a 101, and SIGTERM closes an open
// tunnel at server.drain_timeout and exits 0.
func TestWebSocketThroughGatewayProcess(t *testing.T) {
	o := startWSOrigin(t)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", drain_timeout: 1s, tunnel: {idle_timeout: 1m}}
admin: {listen: "127.0.0.1:0"}
origins:
  ws:
    instances: [{address: %q}]
routes:
  - name: ws
    match: {path_prefix: /ws}
    origin: ws
`, o.addr))
	p := startProcess(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mustDialWS(t, ctx, p.addr, "/ws/echo")
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("through the binary")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "through the binary" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	if got := metricValue(t, p.adminAddr, `floodgate_tunnels_open{route="ws"}`); got != 1 {
		t.Errorf("floodgate_tunnels_open = %v, want 1", got)
	}
	for _, dir := range []string{"to_origin", "to_client"} {
		if got := metricValue(t, p.adminAddr, `floodgate_tunnel_bytes_total{direction="`+dir+`",route="ws"}`); got < float64(len("through the binary")) {
			t.Errorf("floodgate_tunnel_bytes_total{direction=%s} = %v", dir, got)
		}
	}
	if got := metricValue(t, p.adminAddr, "floodgate_requests_in_flight"); got != 0 {
		t.Errorf("floodgate_requests_in_flight = %v with only a tunnel open, want 0", got)
	}
	// The access log is written when the handshake's request ends (at the
	// hijack), through a buffered writer.
	var lines []map[string]any
	eventually(t, 5*time.Second, "the handshake's access log line", func() bool {
		lines = accessLines(p, "/ws/echo")
		return len(lines) > 0
	})
	if len(lines) != 1 || lines[0]["status"] != float64(101) || lines[0]["category"] != "success" {
		t.Errorf("access log lines for the handshake: %v", lines)
	}

	p.signal(t, syscall.SIGTERM)
	t0 := time.Now()
	if _, _, err := c.Read(ctx); err == nil {
		t.Fatal("the tunnel outlived the shutdown")
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("tunnel closed %v after SIGTERM, want about the 1s drain timeout", d)
	}
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Errorf("gateway exit: %v, want 0", err)
	}
	o.awaitEnd(t)
}

// An origin_group route carries WebSocket: the handshake goes to the
// group's active origin, and the tunnel is counted under the route.
func TestWebSocketThroughOriginGroup(t *testing.T) {
	east := startWSOrigin(t)
	west := startWSOrigin(t)
	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", tunnel: {idle_timeout: 1m}}
origins:
  east: {instances: [{address: %q}]}
  west: {instances: [{address: %q}]}
origin_groups:
  - {name: chat, origins: [east, west], failover: {failback_after: 1h}}
routes:
  - {name: ws, match: {path_prefix: /}, origin_group: chat}
`, east.addr, west.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("group")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "group" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	if got := tunnelSeries(t, gw, "floodgate_tunnels_open", map[string]string{"route": "ws"}); got != 1 {
		t.Errorf("floodgate_tunnels_open{route=ws} = %v, want 1", got)
	}
	c.Close(websocket.StatusNormalClosure, "")
	if code := east.awaitEnd(t); code != websocket.StatusNormalClosure {
		t.Errorf("the active origin (east) saw close %v", code)
	}
	if n := west.requests.Load(); n != 0 {
		t.Errorf("the standby origin got %d requests", n)
	}
	awaitNoTunnels(t, gw)
}

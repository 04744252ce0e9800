package test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
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

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestStaticRouteAndNoRoute(t *testing.T) {
	o := startOrigin(t, echoHandler)
	gw := startGateway(t, baseConfig(o.addr, ""))
	c := httpClient(t)

	resp, body := get(t, c, "http://"+gw.addr+"/healthz")
	if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("X-Floodgate-Status") != "success" {
		t.Fatalf("health: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = get(t, c, "http://"+gw.addr+"/nowhere")
	if resp.StatusCode != 404 || resp.Header.Get("X-Floodgate-Status") != "no_route" || !strings.Contains(body, "/nowhere") {
		t.Fatalf("no route: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestEncodedPathAndRawQueryPreserved(t *testing.T) {
	o := startOrigin(t, echoHandler)
	gw := startGateway(t, baseConfig(o.addr, ""))
	_, body := raw(t, gw.addr, "GET /o/a%20b/c%3Fd/%E2%82%AC?q=%20x&y=1+2&z=%2F&empty= HTTP/1.1\r\nHost: example.test\r\n\r\n")
	e := decodeEcho(t, body)
	if want := "/a%20b/c%3Fd/%E2%82%AC?q=%20x&y=1+2&z=%2F&empty="; e.RequestURI != want {
		t.Fatalf("origin saw %q, want %q", e.RequestURI, want)
	}
}

func TestPathNormalizationCannotBypassRoutes(t *testing.T) {
	o := startOrigin(t, echoHandler)
	// Routes match in declared order, so the block comes first.
	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  backend: {instances: [{address: %q}]}
routes:
  - name: admin-block
    match: {path_prefix: /admin}
    static: {status: 403, body: forbidden}
  - name: rest
    match: {path_prefix: /}
    origin: backend
`, o.addr))
	cases := []struct {
		path   string
		status int
		seen   string
	}{
		{"/public/%2e%2e/admin", 403, ""},
		{"/public/%2E%2e/admin/x", 403, ""},
		{"//admin", 403, ""},
		{"/./admin", 403, ""},
		{"/public/../admin", 403, ""},
		{"/Admin", 200, "/Admin"},
		{"/admin%2Fsecret", 400, ""},
		{"/public%5C..%5Cadmin", 400, ""},
		{"/x/../y/./z", 200, "/y/z"},
		{"/a//b", 200, "/a/b"},
		{"/%7Euser", 200, "/~user"},
	}
	for _, tc := range cases {
		resp, body := raw(t, gw.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if tc.seen != "" {
			if e := decodeEcho(t, body); e.RequestURI != tc.seen {
				t.Errorf("%s: origin saw %q, want %q", tc.path, e.RequestURI, tc.seen)
			}
		}
		if tc.status == 400 && resp.Header.Get("X-Floodgate-Status") != "client_error" {
			t.Errorf("%s: category %q", tc.path, resp.Header.Get("X-Floodgate-Status"))
		}
	}
}

func TestHopByHopHeadersRemovedAndForwardedHeadersSet(t *testing.T) {
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Connection", "X-Resp-Hop")
		ctx.Response.Header.Set("X-Resp-Hop", "1")
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.Response.Header.Set("Proxy-Authenticate", "Basic")
		ctx.Response.Header.Add("X-Resp-Dup", "a")
		ctx.Response.Header.Add("X-Resp-Dup", "b")
		echoHandler(ctx)
	})
	gw := startGateway(t, baseConfig(o.addr, ""))
	resp, body := raw(t, gw.addr, "GET /o/h HTTP/1.1\r\n"+
		"Host: front.example\r\n"+
		"Connection: keep-alive, X-Hop-Custom\r\n"+
		"X-Hop-Custom: secret\r\n"+
		"keep-alive: timeout=5\r\n"+
		"TE: trailers\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\n"+
		"X-Forwarded-Host: evil.example\r\n"+
		"x-MiXeD-CaSe: kept\r\n"+
		"X-Dup: 1\r\n"+
		"X-Dup: 2\r\n"+
		"\r\n")
	e := decodeEcho(t, body)
	for _, h := range []string{"Connection", "X-Hop-Custom", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization"} {
		if v := e.header(h); len(v) > 0 {
			t.Errorf("origin received hop-by-hop %s: %v", h, v)
		}
	}
	if v := e.header("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For from an untrusted client must be replaced: %v", v)
	}
	if v := e.header("X-Forwarded-Host"); len(v) != 1 || v[0] != "front.example" {
		t.Errorf("X-Forwarded-Host: %v", v)
	}
	if v := e.header("X-Forwarded-Proto"); len(v) != 1 || v[0] != "http" {
		t.Errorf("X-Forwarded-Proto: %v", v)
	}
	if v := e.header("Via"); len(v) != 1 || v[0] != "1.1 floodgate" {
		t.Errorf("Via: %v", v)
	}
	if v := e.header("Host"); len(v) != 1 || v[0] != "front.example" {
		t.Errorf("Host: %v", v)
	}
	found := false
	for _, h := range e.Headers {
		if h[0] == "x-MiXeD-CaSe" && h[1] == "kept" {
			found = true
		}
	}
	if !found {
		t.Errorf("header name case not preserved: %v", e.Headers)
	}
	if v := e.header("X-Dup"); len(v) != 2 || v[0] != "1" || v[1] != "2" {
		t.Errorf("duplicate request headers: %v", v)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate"} {
		if resp.Header.Get(h) != "" {
			t.Errorf("client received hop-by-hop response header %s", h)
		}
	}
	if v := resp.Header.Values("X-Resp-Dup"); len(v) != 2 {
		t.Errorf("duplicate response headers: %v", v)
	}
	if v := resp.Header.Get("Via"); v != "1.1 floodgate" {
		t.Errorf("response Via: %q", v)
	}
}

func TestTrustedProxyExtendsForwardedFor(t *testing.T) {
	o := startOrigin(t, echoHandler)
	gw := startGateway(t, strings.Replace(baseConfig(o.addr, ""), "max_body_size: 1MiB", "max_body_size: 1MiB\n  trusted_proxies: [\"127.0.0.0/8\"]", 1))
	_, body := raw(t, gw.addr, "GET /o/x HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: https\r\n\r\n")
	e := decodeEcho(t, body)
	if v := e.header("X-Forwarded-For"); len(v) != 1 || v[0] != "10.1.2.3, 127.0.0.1" {
		t.Errorf("X-Forwarded-For: %v", v)
	}
	if v := e.header("X-Forwarded-Proto"); len(v) != 1 || v[0] != "https" {
		t.Errorf("X-Forwarded-Proto: %v", v)
	}
}

func TestChunkedRequestAndResponse(t *testing.T) {
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		sum := sha256.New()
		n, _ := io.Copy(sum, ctx.RequestBodyStream())
		reply := fmt.Sprintf("%d:%x", n, sum.Sum(nil))
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "%s\n", reply)
				_ = w.Flush()
			}
		})
	})
	gw := startGateway(t, baseConfig(o.addr, ""))
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB, beyond the buffered limit
	var req strings.Builder
	req.WriteString("POST /o/up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	for off := 0; off < len(payload); off += 7000 {
		end := min(off+7000, len(payload))
		fmt.Fprintf(&req, "%x\r\n%s\r\n", end-off, payload[off:end])
	}
	req.WriteString("0\r\n\r\n")
	resp, body := raw(t, gw.addr, req.String())
	want := fmt.Sprintf("%d:%x", len(payload), sha256.Sum256(payload))
	if resp.StatusCode != 200 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, transfer-encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	if strings.Count(body, want) != 3 {
		t.Fatalf("origin saw a different body: %q, want 3x %q", body, want)
	}
}

func TestHeadAnd204And304HaveNoBody(t *testing.T) {
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/204":
			ctx.SetStatusCode(204)
		case "/304":
			ctx.SetStatusCode(304)
			ctx.Response.Header.Set("ETag", `"v1"`)
		default:
			ctx.SetContentType("text/plain")
			ctx.SetBodyString(strings.Repeat("x", 1234))
		}
	})
	gw := startGateway(t, baseConfig(o.addr, ""))
	conn, err := net.Dial("tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	// Several bodiless responses on one keep-alive connection: any stray
	// body byte would corrupt the next response.
	for _, tc := range []struct {
		method, path string
		status       int
		length       string
	}{
		{"HEAD", "/o/get", 200, "1234"},
		{"GET", "/o/204", 204, ""},
		{"GET", "/o/304", 304, ""},
		{"GET", "/o/get", 200, "1234"},
	} {
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: h\r\n\r\n", tc.method, tc.path)
		req, _ := http.NewRequest(tc.method, "http://h"+tc.path, nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s: status %d", tc.method, tc.path, resp.StatusCode)
		}
		if tc.length != "" && resp.Header.Get("Content-Length") != tc.length {
			t.Errorf("%s %s: Content-Length %q, want %s", tc.method, tc.path, resp.Header.Get("Content-Length"), tc.length)
		}
		if tc.method == "HEAD" || tc.status == 204 || tc.status == 304 {
			if len(body) != 0 {
				t.Errorf("%s %s: body %q", tc.method, tc.path, body)
			}
		}
	}
}

func TestExpectContinue(t *testing.T) {
	o := startOrigin(t, echoHandler)
	gw := startGateway(t, baseConfig(o.addr, ""))
	conn, err := net.Dial("tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "POST /o/e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue before sending the body, got %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if e := decodeEcho(t, string(body)); e.BodyLen != 5 || len(e.header("Expect")) != 0 {
		t.Fatalf("origin saw body %d bytes, Expect %v", e.BodyLen, e.header("Expect"))
	}

	// An oversized body is refused before the client sends it.
	resp, _ = raw(t, gw.addr, "POST /o/e HTTP/1.1\r\nHost: h\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n")
	if resp.StatusCode != 413 {
		t.Fatalf("oversized expect: %d", resp.StatusCode)
	}
}

func TestSmugglingRejected(t *testing.T) {
	o := startOrigin(t, echoHandler)
	gw := startGateway(t, baseConfig(o.addr, ""))
	for name, req := range map[string]string{
		"CL and TE":       "POST /o/s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE and CL":       "POST /o/s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
		"conflicting CL":  "POST /o/s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
		"duplicate CL":    "POST /o/s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
		"TE not chunked":  "POST /o/s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
		"CL lowercase TE": "POST /o/s HTTP/1.1\r\nHost: h\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		resp, body := raw(t, gw.addr, req)
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400 (%s)", name, resp.StatusCode, body)
		}
		if resp.Header.Get("X-Floodgate-Status") != "client_error" {
			t.Errorf("%s: category %q", name, resp.Header.Get("X-Floodgate-Status"))
		}
	}
}

func TestSizeLimits(t *testing.T) {
	o := startOrigin(t, echoHandler)
	gw := startGateway(t, baseConfig(o.addr, ""))
	resp, _ := raw(t, gw.addr, "POST /o/big HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n"+strings.Repeat("b", 2000000))
	if resp.StatusCode != 413 || resp.Header.Get("X-Floodgate-Status") != "request_too_large" {
		t.Errorf("content-length over limit: %d %q", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"))
	}

	// A chunked body has no length up front: the limit trips mid-stream.
	var req strings.Builder
	req.WriteString("POST /o/big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("z", 64<<10)
	for i := 0; i < 20; i++ { // 1.25 MiB > 1 MiB
		fmt.Fprintf(&req, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	req.WriteString("0\r\n\r\n")
	resp, _ = raw(t, gw.addr, req.String())
	if resp.StatusCode != 413 {
		t.Errorf("chunked over limit: %d", resp.StatusCode)
	}

	resp, _ = raw(t, gw.addr, "GET /o/x HTTP/1.1\r\nHost: h\r\nX-Huge: "+strings.Repeat("h", 40<<10)+"\r\n\r\n")
	if resp.StatusCode != 431 || resp.Header.Get("X-Floodgate-Status") != "header_too_large" {
		t.Errorf("huge header: %d %q", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"))
	}
}

func TestSlowHeaderSenderIsCutOff(t *testing.T) {
	o := startOrigin(t, echoHandler)
	gw := startGateway(t, strings.Replace(baseConfig(o.addr, ""), "read_header_timeout: 2s", "read_header_timeout: 300ms", 1))
	conn, err := net.Dial("tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /o/slow HTTP/1.1\r\nHost: h\r\n") // never finishes the header
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	data, _ := io.ReadAll(conn)
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Fatalf("connection held for %s", elapsed)
	}
	if len(data) > 0 && !bytes.HasPrefix(data, []byte("HTTP/1.1 408")) {
		t.Fatalf("unexpected reply %q", data)
	}
}

// A request without a body keeps the header's read deadline while its
// origin works (nothing is read from the client then): an answer slower
// than read_header_timeout still reaches the client, and the connection
// serves the next request under a fresh idle deadline.
func TestBodilessRequestOutlivesHeaderTimeout(t *testing.T) {
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/o/slow" {
			time.Sleep(700 * time.Millisecond) // the slow origin under test
		}
		echoHandler(ctx)
	})
	gw := startGateway(t, strings.Replace(baseConfig(o.addr, ""), "read_header_timeout: 2s", "read_header_timeout: 300ms", 1))
	conn, err := net.Dial("tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for _, path := range []string{"/o/slow", "/o/next"} {
		if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("%s: status %d, close %v", path, resp.StatusCode, resp.Close)
		}
	}
}

// Upgrade is hop-by-hop, but it is never stripped from a request that
// asks for it: a WebSocket handshake reaches the origin with Upgrade and
// Connection (websocket_test.go), and any other use of Upgrade is refused
// rather than forwarded as a plain request without it.
func TestUpgradeIsRefusedNotStripped(t *testing.T) {
	var reached atomic.Int64
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		reached.Add(1)
		echoHandler(ctx)
	})
	gw := startGateway(t, baseConfig(o.addr, ""))
	for _, tc := range []struct{ request, category string }{
		{"GET /o/h HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", "client_error"},
		{"GET /o/h HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n", "upgrade_refused"},
		{"GET /o/h HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n", "upgrade_refused"},
	} {
		resp, body := raw(t, gw.addr, tc.request)
		if resp.StatusCode < 400 || resp.Header.Get("X-Floodgate-Status") != tc.category || !strings.Contains(strings.ToLower(body), "upgrade") {
			t.Errorf("%q: %d %s %q, want a refusal with category %s", tc.request, resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body, tc.category)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d refused upgrades reached the origin", n)
	}
}

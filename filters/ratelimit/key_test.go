package ratelimit

import (
	"github.com/floodgate-dev/floodgate/trust"

	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
	"github.com/floodgate-dev/floodgate/routing"
)

func keyFor(t *testing.T, p ratelimit.Policy, ip string, route string, headers map[string]string) []byte {
	t.Helper()
	c := filters.AcquireContext()
	defer c.Release()
	c.Request = &fasthttp.RequestCtx{}
	for k, v := range headers {
		c.Request.Request.Header.Set(k, v)
	}
	if ip != "" {
		{
			ip := netip.MustParseAddr(ip)
			c.SetIdentity(trust.Identity{Peer: ip, Client: ip})
		}
	}
	if route != "" {
		c.Route = &routing.Route{Name: route}
	}
	l := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer l.Close()
	p.Name = "p"
	if err := l.Update([]ratelimit.Policy{p}); err != nil {
		t.Fatal(err)
	}
	return appendKey(nil, l.Buckets("p").KeySpec(), c)
}

func TestKeys(t *testing.T) {
	byIP := ratelimit.Policy{Rate: 1}
	if !bytes.Equal(keyFor(t, byIP, "2001:db8::1", "", nil), keyFor(t, byIP, "2001:db8::ffff", "", nil)) {
		t.Error("IPv6 addresses in one /64 got different keys")
	}
	if bytes.Equal(keyFor(t, byIP, "2001:db8:0:1::1", "", nil), keyFor(t, byIP, "2001:db8::1", "", nil)) {
		t.Error("different /64s share a key")
	}
	perAddr := ratelimit.Policy{Rate: 1, IPv6Prefix: 128}
	if bytes.Equal(keyFor(t, perAddr, "2001:db8::1", "", nil), keyFor(t, perAddr, "2001:db8::2", "", nil)) {
		t.Error("ipv6_prefix 128 grouped addresses")
	}
	if !bytes.Equal(keyFor(t, byIP, "192.0.2.1", "", nil), keyFor(t, byIP, "::ffff:192.0.2.1", "", nil)) {
		t.Error("IPv4-mapped address keyed differently from IPv4")
	}

	combo := ratelimit.Policy{Rate: 1, Key: []string{"header:X-Api-Key", "route"}}
	a := keyFor(t, combo, "192.0.2.1", "r1", map[string]string{"x-api-key": "k1"})
	if !bytes.Equal(a, keyFor(t, combo, "192.0.2.99", "r1", map[string]string{"X-API-KEY": "k1"})) {
		t.Error("client IP leaked into a header+route key")
	}
	if bytes.Equal(a, keyFor(t, combo, "192.0.2.1", "r2", map[string]string{"X-Api-Key": "k1"})) {
		t.Error("route ignored")
	}
	// Length-prefixed parts: a header value cannot imitate another split.
	x := keyFor(t, combo, "", "b", map[string]string{"X-Api-Key": "a"})
	y := keyFor(t, combo, "", "", map[string]string{"X-Api-Key": "a\x03\x01b"})
	if bytes.Equal(x, y) {
		t.Error("ambiguous key encoding")
	}
	// A huge header value is digested, not stored.
	long := keyFor(t, combo, "", "r", map[string]string{"X-Api-Key": strings.Repeat("z", 4000)})
	if len(long) > 40 {
		t.Errorf("key for a 4000-byte header is %d bytes", len(long))
	}
	if bytes.Equal(long, keyFor(t, combo, "", "r", map[string]string{"X-Api-Key": strings.Repeat("z", 3999)})) {
		t.Error("digests collide")
	}
}

package trust

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	ok := map[string]string{
		"10.0.0.0/8":           "10.0.0.0/8",
		" 10.1.2.3/8 ":         "10.0.0.0/8",
		"192.0.2.7":            "192.0.2.7/32",
		"2001:db8::/32":        "2001:db8::/32",
		"2001:db8::1":          "2001:db8::1/128",
		"::ffff:10.0.0.0/104":  "10.0.0.0/8",
		"::ffff:192.0.2.7":     "192.0.2.7/32",
		"::ffff:192.0.2.7/128": "192.0.2.7/32",
	}
	for in, want := range ok {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "nope", "fe80::1%eth0", "fe80::/10%eth0", "::ffff:0:0/80", "10.0.0.0/"} {
		if p, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) = %v, want an error", bad, p)
		}
	}
}

func TestParseNamesTheBadEntry(t *testing.T) {
	_, err := Parse([]string{"10.0.0.0/8", "bogus"})
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Index != 1 {
		t.Fatalf("err = %v, want an EntryError at index 1", err)
	}
	var got []string
	Validate("server.trusted_proxies", []string{"bogus", "10.0.0.0/8", "1.2.3.4/99"}, func(k, msg string) { got = append(got, k) })
	if len(got) != 2 || got[0] != "server.trusted_proxies[0]" || got[1] != "server.trusted_proxies[2]" {
		t.Fatalf("Validate reported %v", got)
	}
}

func TestContains(t *testing.T) {
	ps, err := Parse([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"10.1.2.3":         true,
		"::ffff:10.1.2.3":  true, // dual-stack listeners report IPv4 peers mapped
		"11.0.0.1":         false,
		"2001:db8::5":      true,
		"2001:db9::5":      false,
		"::ffff:11.0.0.1":  false,
		"::ffff:a01:203":   true,
		"127.0.0.1":        false,
		"2001:db8:ffff::1": true,
	}
	for a, want := range cases {
		if got := ps.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", a, got, want)
		}
	}
	if ps.Contains(netip.Addr{}) {
		t.Error("the invalid address must never be trusted")
	}
	if !Prefixes(nil).Empty() || ps.Empty() {
		t.Error("Empty is wrong")
	}
}

func TestDerive(t *testing.T) {
	lb := MustPrefixes(t, "10.0.0.0/8")
	cases := []struct {
		name, peer string
		xff        []string
		client     string
		trusted    bool
	}{
		{"untrusted peer ignores XFF", "203.0.113.9", []string{"1.1.1.1"}, "203.0.113.9", false},
		{"trusted peer without XFF is the client", "10.0.0.5", nil, "10.0.0.5", true},
		{"right-most hop", "10.0.0.5", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"client-written hops left of the first untrusted one are ignored", "10.0.0.5", []string{"1.1.1.1, 198.51.100.7"}, "198.51.100.7", true},
		{"trusted hops are skipped", "10.0.0.5", []string{"198.51.100.7, 10.2.0.1"}, "198.51.100.7", true},
		{"several headers read as one list", "10.0.0.5", []string{"1.1.1.1", "198.51.100.7", "10.9.9.9"}, "198.51.100.7", true},
		{"all hops trusted: the left-most", "10.0.0.5", []string{"10.3.0.1, 10.2.0.1"}, "10.3.0.1", true},
		{"garbage stops at the last trusted address", "10.0.0.5", []string{"1.1.1.1, unknown"}, "10.0.0.5", true},
		{"garbage behind a trusted hop", "10.0.0.5", []string{"1.1.1.1, evil, 10.2.0.1"}, "10.2.0.1", true},
		{"ports and brackets", "10.0.0.5", []string{"[2001:db8::1]:443"}, "2001:db8::1", true},
		{"v4 with port", "10.0.0.5", []string{"198.51.100.7:5555"}, "198.51.100.7", true},
		{"empty entries", "10.0.0.5", []string{"198.51.100.7,, "}, "198.51.100.7", true},
		{"mapped hop is unmapped", "10.0.0.5", []string{"::ffff:198.51.100.7"}, "198.51.100.7", true},
		{"mapped peer", "::ffff:10.0.0.5", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"zone is garbage", "10.0.0.5", []string{"fe80::1%eth0"}, "10.0.0.5", true},
	}
	for _, tc := range cases {
		var xff [][]byte
		for _, v := range tc.xff {
			xff = append(xff, []byte(v))
		}
		id := Derive(netip.MustParseAddr(tc.peer), lb, xff)
		if id.Client.String() != tc.client || id.PeerTrusted != tc.trusted || id.Peer != netip.MustParseAddr(tc.peer).Unmap() {
			t.Errorf("%s: got %+v, want client %s trusted %v", tc.name, id, tc.client, tc.trusted)
		}
	}
}

func MustPrefixes(t *testing.T, s ...string) Prefixes {
	t.Helper()
	ps, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func FuzzDerive(f *testing.F) {
	f.Add("10.0.0.5", "1.1.1.1, 198.51.100.7, 10.2.0.1")
	f.Add("203.0.113.9", "[2001:db8::1]:443")
	lb := Prefixes{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		id := Derive(p, lb, [][]byte{[]byte(xff)})
		if !id.Client.IsValid() && p.IsValid() {
			t.Fatalf("lost the client: %+v", id)
		}
		if !id.PeerTrusted && id.Client != id.Peer {
			t.Fatalf("an untrusted peer's XFF was believed: %+v", id)
		}
		if id.PeerTrusted && id.Client != id.Peer && !lb.Contains(id.Client) {
			return // the right-most untrusted hop: fine
		}
	})
}

func TestParseIdentity(t *testing.T) {
	ok := map[string]string{
		"spiffe://prod/ns/ops/sa/deploy":     "uri:spiffe://prod/ns/ops/sa/deploy",
		"uri:spiffe://prod/ns/ops/sa/deploy": "uri:spiffe://prod/ns/ops/sa/deploy",
		"dns:Ops.Internal":                   "dns:ops.internal",
		" cn:deploy bot ":                    "cn:deploy bot",
	}
	for in, want := range ok {
		if got, err := ParseIdentity(in); err != nil || got != want {
			t.Errorf("ParseIdentity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ops.internal", "dns:", "cn:", "uri:ops", "email:a@b", "10.0.0.0/8"} {
		if got, err := ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) = %q, want an error", bad, got)
		}
	}
	var got []string
	ValidateIdentities("x.trusted_identities", []string{"dns:a", "nope"}, func(k, _ string) { got = append(got, k) })
	if len(got) != 1 || got[0] != "x.trusted_identities[1]" {
		t.Fatalf("ValidateIdentities reported %v", got)
	}
}

// The one rule: a trusted range or a trusted certificate identity; a
// certificate presented by a trusted proxy names the proxy, so it vouches
// for nobody behind it.
func TestSourcesTrusts(t *testing.T) {
	src, err := ParseSources([]string{"10.0.0.0/8"}, []string{"spiffe://prod/ops"})
	if err != nil {
		t.Fatal(err)
	}
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	ops := &TLS{Names: []string{"uri:spiffe://prod/ops"}}
	other := &TLS{Names: []string{"uri:spiffe://prod/web"}}
	cases := []struct {
		name string
		id   Identity
		want bool
	}{
		{"trusted address", Identity{Peer: a("10.1.1.1"), Client: a("10.1.1.1")}, true},
		{"trusted identity", Identity{Peer: a("203.0.113.1"), Client: a("203.0.113.1"), TLS: ops}, true},
		{"other identity", Identity{Peer: a("203.0.113.1"), Client: a("203.0.113.1"), TLS: other}, false},
		{"TLS without a certificate", Identity{Peer: a("203.0.113.1"), Client: a("203.0.113.1"), TLS: &TLS{}}, false},
		{"proxy's certificate, client behind it", Identity{Peer: a("192.0.2.1"), Client: a("203.0.113.1"), PeerTrusted: true, TLS: ops}, false},
		{"proxy's own request", Identity{Peer: a("192.0.2.1"), Client: a("192.0.2.1"), PeerTrusted: true, TLS: ops}, true},
	}
	for _, c := range cases {
		if got := src.Trusts(c.id); got != c.want {
			t.Errorf("%s: Trusts = %v, want %v", c.name, got, c.want)
		}
	}
	if _, err := ParseSources(nil, []string{"dns:a", "bogus"}); err == nil || err.Error() != `trusted_identities[1]: invalid identity "bogus": want a URI (spiffe://...), dns:NAME or cn:NAME` {
		t.Fatalf("error = %v", err)
	}
	if !(Sources{}).Empty() || src.Empty() {
		t.Fatal("Empty is wrong")
	}
}

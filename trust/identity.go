package trust

import (
	"bytes"
	"net/netip"
)

// Identity is who a request comes from, derived once per request.
type Identity struct {
	// Peer is the TCP peer's address.
	Peer netip.Addr
	// Client is the address every trust decision uses: Peer, or, when Peer
	// is a trusted proxy, the right-most X-Forwarded-For hop that is not
	// itself a trusted proxy.
	Client netip.Addr
	// PeerTrusted reports that Peer is a trusted proxy, so the forwarding
	// headers it sent are believed (and extended rather than replaced).
	PeerTrusted bool
	// TLS describes the client connection's TLS session (version, SNI, the
	// verified client certificate's names); nil over plain HTTP.
	TLS *TLS
}

// Derive computes a request's identity. forwardedFor holds the values of
// every X-Forwarded-For header in the order received; it is read only when
// peer is a trusted proxy.
//
// The walk goes right to left, because each proxy appends the address it
// received the request from: the right-most hops were written by proxies we
// trust, everything left of the first untrusted hop was written by the
// client and can say anything. The first hop that is not a trusted proxy is
// the client. If every hop is trusted the left-most one is the client; if a
// hop cannot be parsed the walk stops at the last trusted address, which is
// then the client (a proxy's own request, or garbage it passed along: either
// way nothing the client wrote is believed).
func Derive(peer netip.Addr, proxies Prefixes, forwardedFor [][]byte) Identity {
	peer = peer.Unmap()
	id := Identity{Peer: peer, Client: peer}
	if !proxies.Contains(peer) {
		return id
	}
	id.PeerTrusted = true
	for i := len(forwardedFor) - 1; i >= 0; i-- {
		v := forwardedFor[i]
		for len(v) > 0 {
			var hop []byte
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				hop, v = v, nil
			}
			hop = bytes.TrimSpace(hop)
			if len(hop) == 0 {
				continue // "a,,b" and a trailing comma carry no hop
			}
			a, ok := parseHop(hop)
			if !ok {
				return id
			}
			id.Client = a
			if !proxies.Contains(a) {
				return id
			}
		}
	}
	return id
}

// parseHop reads one X-Forwarded-For entry: an address, optionally with a
// port ("192.0.2.1:443", "[2001:db8::1]:443") or in brackets.
func parseHop(b []byte) (netip.Addr, bool) {
	s := string(b)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

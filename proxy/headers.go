package proxy

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
)

// hopByHop are the headers that describe one connection, not the message
// (RFC 9110 7.6.1); every Proxy-* header is treated likewise because it
// belongs to the client-proxy hop.
// Transfer-Encoding and Content-Length are re-derived by fasthttp from the
// body it forwards.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"TE", "Trailer", "Transfer-Encoding", "Upgrade",
}

// connectionTokens appends the header names listed in a Connection header
// value, which are hop-by-hop too.
func connectionTokens(v []byte, dst [][]byte) [][]byte {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 {
			dst = append(dst, tok)
		}
	}
	return dst
}

// copyRequestHeaders adds src's end-to-end headers to dst in their
// original order, skipping hop-by-hop ones in any spelling (fasthttp keeps
// names as sent, since the gateway forwards them verbatim), those the
// Connection header names, and those the gateway sets itself. Copying
// selectively, rather than copying everything and deleting, matters:
// fasthttp's delete reorders headers. Each copy function ranges over its
// concrete header type so the iterator inlines and nothing is allocated.
//
// It returns which forwarding headers src carries (forwardingSent), so
// setForwarded looks up only those.
func copyRequestHeaders(dst, src *fasthttp.RequestHeader, c *filters.Context) (sent forwardingSent) {
	var buf [4][]byte
	named := buf[:0]
	for k, v := range src.All() {
		if bytes.EqualFold(k, []byte("Connection")) {
			named = connectionTokens(v, named)
		}
	}
	for k, v := range src.All() {
		role := headerRoleOf(k)
		if role&roleRequestOwned != 0 {
			sent |= forwardingBit(k)
		}
		if role&(roleHopByHop|roleRequestOwned) == 0 && !containsFold(named, k) && !c.UpstreamOwns(k) {
			dst.AddBytesKV(k, v)
		}
	}
	return sent
}

// forwardingSent records which of the forwarding headers setForwarded
// extends or replaces a client's request carries.
type forwardingSent uint8

const (
	sentXForwardedFor forwardingSent = 1 << iota
	sentForwarded
	sentXRealIP
	sentXForwardedProto
	sentXForwardedHost
	sentVia
)

// forwardingNames maps each forwarding header to its bit.
var forwardingNames = [...]struct {
	name string
	bit  forwardingSent
}{
	{"X-Forwarded-For", sentXForwardedFor}, {"Forwarded", sentForwarded}, {"X-Real-IP", sentXRealIP},
	{"X-Forwarded-Proto", sentXForwardedProto}, {"X-Forwarded-Host", sentXForwardedHost}, {"Via", sentVia},
}

func forwardingBit(name []byte) forwardingSent {
	for _, f := range forwardingNames {
		if len(name) == len(f.name) && bytes.EqualFold(name, []byte(f.name)) {
			return f.bit
		}
	}
	return 0
}

// copyResponseHeaders is copyRequestHeaders for an origin's response;
// Content-Length is re-derived from the body the gateway sends.
func copyResponseHeaders(dst, src *fasthttp.ResponseHeader, c *filters.Context) {
	var buf [4][]byte
	named := buf[:0]
	for k, v := range src.All() {
		if bytes.EqualFold(k, []byte("Connection")) {
			named = connectionTokens(v, named)
		}
	}
	for k, v := range src.All() {
		if headerRoleOf(k)&(roleHopByHop|roleContentLength) == 0 && !containsFold(named, k) && !c.OwnsResponseHeader(k) {
			dst.AddBytesKV(k, v)
		}
	}
}

// copyResponseHeadersWhole copies the origin's whole header block (status
// included) to dst when nothing in it is to be left out: no hop-by-hop
// header, no header the gateway owns, a keep-alive HTTP/1.1 answer. That
// is what copyResponseHeaders would produce, without passing every header
// through fasthttp's setters again (each validates its value). Content-Length
// comes along and is set again from the body sent (or, for HEAD, from the
// origin's); a 204 or 304 has no body to set it from, so it is copied
// header by header. It reports whether it copied; if not, dst is untouched.
func copyResponseHeadersWhole(dst, src *fasthttp.ResponseHeader, c *filters.Context) bool {
	switch status := src.StatusCode(); {
	case src.ConnectionClose() || !src.IsHTTP11():
		return false
	case status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified:
		// No body to set Content-Length again from: the copy drops it.
		return false
	}
	for k := range src.All() {
		if headerRoleOf(k)&roleHopByHop != 0 || c.OwnsResponseHeader(k) {
			return false
		}
	}
	src.CopyTo(dst)
	return true
}

// Roles of a header name for the forwarder.
const (
	roleHopByHop      uint8 = 1 << iota // describes one connection: never forwarded
	roleRequestOwned                    // set on upstream requests by the gateway itself
	roleContentLength                   // re-derived from the body sent
)

// maxRoleNameLen is the longest name with a role, other than Proxy-*.
const maxRoleNameLen = 20

// headerRoles lists the names with a role by their length, so classifying
// an ordinary header costs a comparison or two rather than one per entry
// of each list: every header of every request and response passes here.
var headerRoles = func() (byLen [maxRoleNameLen + 1][]namedRole) {
	add := func(role uint8, names ...string) {
		for _, n := range names {
			list := byLen[len(n)]
			if i := slices.IndexFunc(list, func(r namedRole) bool { return strings.EqualFold(r.name, n) }); i >= 0 {
				list[i].role |= role
				continue
			}
			byLen[len(n)] = append(list, namedRole{n, role})
		}
	}
	add(roleHopByHop, hopByHop...)
	add(roleRequestOwned, requestOwnHeaders...)
	add(roleContentLength, "Content-Length")
	return byLen
}()

type namedRole struct {
	name string
	role uint8
}

// headerRoleOf returns name's roles, matched in any letter case; every
// Proxy-* header is hop-by-hop.
func headerRoleOf(name []byte) uint8 {
	if len(name) > 6 && bytes.EqualFold(name[:6], []byte("Proxy-")) {
		return roleHopByHop
	}
	if len(name) > maxRoleNameLen {
		return 0
	}
	for _, r := range headerRoles[len(name)] {
		if bytes.EqualFold(name, []byte(r.name)) {
			return r.role
		}
	}
	return 0
}

func containsFold(list [][]byte, name []byte) bool {
	for _, n := range list {
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// requestHeaderLookup adapts fasthttp's request header to routing and
// filters: a case-insensitive lookup even with name normalization off
// (which the gateway needs to forward header names exactly as sent).
type requestHeaderLookup struct{ h *fasthttp.RequestHeader }

func (l requestHeaderLookup) Header(name string) (string, bool) {
	if v := l.h.Peek(name); v != nil {
		return string(v), true
	}
	for k, v := range l.h.All() {
		if bytes.EqualFold(k, []byte(name)) {
			return string(v), true
		}
	}
	return "", false
}

// peekFold returns all values of the header named name, any case.
func peekFold(h *fasthttp.RequestHeader, name string, dst [][]byte) [][]byte {
	for k, v := range h.All() {
		if bytes.EqualFold(k, []byte(name)) {
			dst = append(dst, v)
		}
	}
	return dst
}

// setForwarded writes X-Forwarded-For/-Proto/-Host, Forwarded, X-Real-IP
// and Via on the upstream request, which must not carry them yet (the
// forwarder skips them when copying). From a trusted proxy (the TCP peer is
// in server.trusted_proxies) the existing values are extended or kept; from
// anyone else they are replaced, because a client could otherwise claim any
// address it likes. Forwarded and X-Real-IP are written only when the
// client sent them, so the gateway adds no header an origin did not see
// before; X-Forwarded-For always names the peer. sent says which of them
// in carries (copyRequestHeaders): only those are looked up, and since out
// carries none, each is added without a search for one to replace.
func setForwarded(out *fasthttp.RequestHeader, in *fasthttp.RequestHeader, sent forwardingSent, peer netip.Addr, trusted bool, proto, host []byte, via string, scratch [][]byte) {
	lookup := func(bit forwardingSent, name string) [][]byte {
		if sent&bit == 0 {
			return nil
		}
		return peekFold(in, name, scratch[:0])
	}
	// Values are built in a stack buffer: the header copies them.
	var buf [128]byte
	xff := buf[:0]
	if trusted {
		if prev := lookup(sentXForwardedFor, "X-Forwarded-For"); len(prev) > 0 {
			xff = append(bytes.Join(prev, []byte(", ")), ", "...)
		}
	}
	xff = peer.AppendTo(xff)
	out.AddBytesV("X-Forwarded-For", xff)

	if prev := lookup(sentForwarded, "Forwarded"); len(prev) > 0 {
		elem := forwardedElement(peer, string(proto), string(host))
		if trusted {
			elem = string(bytes.Join(prev, []byte(", "))) + ", " + elem
		}
		out.Add("Forwarded", elem)
	}
	if prev := lookup(sentXRealIP, "X-Real-IP"); len(prev) > 0 {
		if trusted {
			out.AddBytesV("X-Real-IP", prev[0])
		} else {
			out.Add("X-Real-IP", peer.String())
		}
	}

	if trusted {
		if v := lookup(sentXForwardedProto, "X-Forwarded-Proto"); len(v) > 0 {
			proto = v[0]
		}
		if v := lookup(sentXForwardedHost, "X-Forwarded-Host"); len(v) > 0 {
			host = v[0]
		}
	}
	out.AddBytesV("X-Forwarded-Proto", proto)
	if len(host) > 0 {
		out.AddBytesV("X-Forwarded-Host", host)
	}

	hop := buf[:0]
	if prev := lookup(sentVia, "Via"); len(prev) > 0 {
		hop = append(bytes.Join(prev, []byte(", ")), ", "...)
	}
	if in.IsHTTP11() {
		hop = append(hop, "1.1 "...)
	} else {
		hop = append(hop, "1.0 "...)
	}
	hop = append(hop, via...)
	out.AddBytesV("Via", hop)
}

// forwardedElement is this hop's RFC 7239 element: for=peer, host, proto.
// IPv6 addresses and hosts with a port are quoted, as the grammar requires.
func forwardedElement(peer netip.Addr, proto, host string) string {
	var b strings.Builder
	b.WriteString("for=")
	if peer.Is6() {
		b.WriteString(`"[` + peer.String() + `]"`)
	} else {
		b.WriteString(peer.String())
	}
	if host != "" {
		b.WriteString(";host=")
		if isToken(host) {
			b.WriteString(host)
		} else {
			b.WriteString(strconv.Quote(host))
		}
	}
	b.WriteString(";proto=" + proto)
	return b.String()
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

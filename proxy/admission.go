package proxy

import (
	"bytes"
	"net/http"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// This file holds the request checks fasthttp's parser does not make but
// RFC 9110/9112 or the gateway's safety require. Each refusal is a client
// error (400, or 505 for a protocol version) and closes the connection; it
// never reaches an origin, so it can never count against one.

// checkHead checks the request line's version and the raw header block:
// every header name a token, no obsolete line folding, Transfer-Encoding
// exactly "chunked" and never together with Content-Length.
func checkHead(h *fasthttp.RequestHeader) (int, string) {
	switch proto := h.Protocol(); {
	case bytes.Equal(proto, []byte("HTTP/1.1")), bytes.Equal(proto, []byte("HTTP/1.0")):
	default:
		// "HTTP/2.0" on an HTTP/1 connection is not HTTP/1 at all (RFC
		// 9112 2.3: a server may refuse a major version it does not speak).
		return http.StatusHTTPVersionNotSupported, "HTTP version " + string(proto) + " is not supported; use HTTP/1.1"
	}
	var cl, te bool
	raw := h.RawHeaders()
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return http.StatusBadRequest, "obsolete header line folding"
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isTokenBytes(line[:colon]) {
			// "Transfer Encoding: chunked" would otherwise travel on as an
			// ordinary header to a hop that reads it differently.
			return http.StatusBadRequest, "invalid header name"
		}
		name, value := line[:colon], line[colon+1:]
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = true
			if !onlyChunked(value) {
				// RFC 9112 6.3: chunked must be the final coding or the
				// body length is unknowable; the gateway decodes no other
				// coding, so anything but exactly "chunked" is refused
				// ("identity" would have the body parsed as a request).
				return http.StatusBadRequest, "unsupported Transfer-Encoding: only chunked is accepted"
			}
		}
	}
	if cl && te {
		// fasthttp lets chunked win; an intermediary must refuse the
		// ambiguity (RFC 9112 6.3), since the next hop may frame it
		// differently.
		return http.StatusBadRequest, "request has both Content-Length and Transfer-Encoding"
	}
	return 0, ""
}

// onlyChunked reports whether a Transfer-Encoding value is exactly the one
// coding "chunked" (any case, optional whitespace).
func onlyChunked(v []byte) bool {
	return bytes.EqualFold(bytes.TrimSpace(v), []byte("chunked"))
}

// target is a request target split for routing: the path (query and
// fragment removed) and, for the absolute form, the authority.
type target struct {
	path      []byte
	authority []byte
	asterisk  bool
}

// parseTarget reads the request target (RFC 9112 3.2): origin form
// ("/a?b"), absolute form ("http://host/a?b", scheme http or https, no
// userinfo) or the asterisk form ("*", OPTIONS only, checked by the
// caller). Every byte must be visible ASCII: raw UTF-8 or control bytes
// are refused rather than guessed at.
func parseTarget(uri []byte) (target, string) {
	if len(uri) == 0 {
		return target{}, "empty request target"
	}
	for _, b := range uri {
		if b <= ' ' || b >= 0x7f {
			return target{}, "request target contains a byte that is not visible ASCII (percent-encode it)"
		}
	}
	if len(uri) == 1 && uri[0] == '*' {
		return target{asterisk: true}, ""
	}
	var t target
	if len(uri) > 0 && uri[0] != '/' {
		i := bytes.Index(uri, []byte("://"))
		if i <= 0 {
			return target{}, "request target must be a path or an absolute http URL"
		}
		scheme := uri[:i]
		if !bytes.EqualFold(scheme, []byte("http")) && !bytes.EqualFold(scheme, []byte("https")) {
			return target{}, "request target scheme " + string(scheme) + " is not http or https"
		}
		rest := uri[i+3:]
		end := bytes.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		t.authority = rest[:end]
		if bytes.IndexByte(t.authority, '@') >= 0 {
			return target{}, "request target must not carry userinfo"
		}
		if !validHost(t.authority) {
			return target{}, "request target has an invalid host"
		}
		uri = rest[end:]
		if len(uri) == 0 || uri[0] != '/' {
			uri = append([]byte("/"), uri...)
		}
	}
	if i := bytes.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	t.path = uri
	return t, ""
}

// rawQuery is the query of a request target as sent (without '?'), cut
// at a fragment; nil when there is none. A target's authority can hold
// neither '?' nor '#' (admit refused it otherwise), so the first of them
// ends the path for origin and absolute form alike.
func rawQuery(uri []byte) []byte {
	i := bytes.IndexAny(uri, "?#")
	if i < 0 || uri[i] == '#' {
		return nil
	}
	q := uri[i+1:]
	if j := bytes.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	return q
}

// validHost reports whether v is a valid Host value (RFC 9110 7.2: uri-host
// [":" port]): a bracketed IPv6 literal, or a reg-name / IPv4 address of
// unreserved characters, percent-escapes and sub-delims; the port is digits.
// Userinfo ("a@b"), raw UTF-8, spaces and paths are refused.
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	var port []byte
	if v[0] == '[' {
		end := bytes.IndexByte(v, ']')
		if end < 0 {
			return false
		}
		a, err := netip.ParseAddr(string(v[1:end]))
		if err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		rest := v[end+1:]
		if len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port = rest[1:]
		}
	} else {
		host := v
		if i := bytes.LastIndexByte(v, ':'); i >= 0 {
			host, port = v[:i], v[i+1:]
		}
		if len(host) == 0 {
			return false
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			switch {
			case c == '%':
				if i+2 >= len(host) || !isHexByte(host[i+1]) || !isHexByte(host[i+2]) {
					return false
				}
				i += 2
			case isUnreservedByte(c), bytes.IndexByte([]byte("!$&'()*+,;="), c) >= 0:
			default:
				return false
			}
		}
	}
	if len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isTokenBytes(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func isUnreservedByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

package routing

import (
	"errors"
	"strings"
)

// EscapedSlashes says what to do with %2F and %5C in a request path. They
// are the classic route-bypass vector: a gateway that matches "/public%2F..%2Fadmin"
// as one opaque segment while the origin decodes it to "/admin" has let the
// request around every rule written for /admin.
type EscapedSlashes string

const (
	// RejectEscapedSlashes answers 400 (the default).
	RejectEscapedSlashes EscapedSlashes = "reject"
	// KeepEscapedSlashes matches and forwards them encoded, for origins that
	// treat them as data (object stores, some APIs).
	KeepEscapedSlashes EscapedSlashes = "keep"
	// DecodeEscapedSlashes turns them into real slashes before matching, so
	// the gateway and the origin agree on the segments.
	DecodeEscapedSlashes EscapedSlashes = "decode"
)

// PathParameters says what to do with ";" path parameters ("/admin;x",
// "/a;jsessionid=1/b"). Servlet-style origins drop them before resolving a
// path, so "/admin;x" is /admin there while a gateway matching it as a
// segment of its own would send it to a catch-all route: a bypass of every
// rule written for /admin.
type PathParameters string

const (
	// RejectPathParameters answers 400 (the default).
	RejectPathParameters PathParameters = "reject"
	// KeepPathParameters matches and forwards them as part of their
	// segment, for origins that give ";" no meaning (a segment "..;" or
	// ".;x" is still refused).
	KeepPathParameters PathParameters = "keep"
	// StripPathParameters removes them before matching, as a servlet
	// container would, so the gateway and the origin agree on the path;
	// the origin receives the path without them.
	StripPathParameters PathParameters = "strip"
)

// PathPolicy is server config's say on paths, applied before matching.
type PathPolicy struct {
	EscapedSlashes EscapedSlashes
	// Parameters is the ";" policy; empty means reject.
	Parameters PathParameters
}

// Normalize applies the policy and returns the canonical path routes match
// on and the origin receives (see NormalizePath).
func (pp PathPolicy) Normalize(raw string) (string, error) {
	if strings.IndexByte(raw, ';') >= 0 {
		switch pp.Parameters {
		case KeepPathParameters:
		case StripPathParameters:
			raw = stripPathParameters(raw)
		default:
			return "", ErrPathParameters
		}
	}
	return normalizePath(raw, pp.EscapedSlashes)
}

// stripPathParameters removes ";..." up to the end of each segment. An
// escaped ";" (%3B) is data and stays.
func stripPathParameters(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for len(p) > 0 {
		i := strings.IndexByte(p, ';')
		if i < 0 {
			b.WriteString(p)
			break
		}
		b.WriteString(p[:i])
		p = p[i:]
		if j := strings.IndexByte(p, '/'); j >= 0 {
			p = p[j:]
		} else {
			p = ""
		}
	}
	return b.String()
}

// Errors from NormalizePath; each becomes a 400 with the message as reason.
var (
	ErrBadPath        = errors.New("request path must start with /")
	ErrBadEscape      = errors.New("malformed percent-encoding in path")
	ErrNulInPath      = errors.New("NUL byte in path")
	ErrEscapedSlash   = errors.New("encoded slash or backslash in path")
	ErrBackslash      = errors.New("backslash in path")
	ErrControlInPath  = errors.New("control character in path")
	ErrPathTooComplex = errors.New("path has too many segments")
	// ErrDotSegmentParams rejects "..;" and ".;x": servlet containers strip
	// path parameters before resolving dot segments, so an origin would
	// read "/a/..;/admin" as "/admin" while routes saw a segment "..;".
	ErrDotSegmentParams = errors.New("dot segment with path parameters")
	// ErrPathParameters rejects ";" path parameters under the default
	// policy (server.path_parameters: reject).
	ErrPathParameters = errors.New("path parameters (;) are not allowed (server.path_parameters)")
)

const maxSegments = 512

// NormalizePath returns the canonical form of a request path: percent-escapes
// of unreserved characters decoded (RFC 3986 6.2.2.2), other escapes kept with
// upper-case hex, runs of slashes merged, and "." and ".." segments resolved
// (clamped at the root). Routes match on this form and it is what the origin
// receives, so the gateway and the origin can never disagree about which
// route a request belongs to. Path parameters are kept; PathPolicy.Normalize
// applies the configured ";" policy as well.
func NormalizePath(raw string, slashes EscapedSlashes) (string, error) {
	return normalizePath(raw, slashes)
}

func normalizePath(raw string, slashes EscapedSlashes) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", ErrBadPath
	}
	if !needsNormalizing(raw) {
		return raw, nil
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "", ErrBadEscape
			}
			v := unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			switch {
			case v == 0:
				return "", ErrNulInPath
			case v == '/' || v == '\\':
				switch slashes {
				case KeepEscapedSlashes:
					writeEscape(&b, v)
				case DecodeEscapedSlashes:
					b.WriteByte('/')
				default:
					return "", ErrEscapedSlash
				}
			case isUnreserved(v):
				b.WriteByte(v)
			default:
				writeEscape(&b, v)
			}
		case c == '\\':
			if slashes == KeepEscapedSlashes {
				b.WriteString("%5C")
			} else if slashes == DecodeEscapedSlashes {
				b.WriteByte('/')
			} else {
				return "", ErrBackslash
			}
		case c < 0x20 || c == 0x7f:
			return "", ErrControlInPath
		default:
			b.WriteByte(c)
		}
	}
	return removeDotSegments(b.String())
}

func needsNormalizing(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '%', '\\':
			return true
		case '/':
			if i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.') {
				return true
			}
		default:
			if c < 0x20 || c == 0x7f {
				return true
			}
		}
	}
	return false
}

// removeDotSegments merges empty segments and resolves "." and "..". The
// input starts with "/" and has no escapes left that could hide a dot.
func removeDotSegments(p string) (string, error) {
	segs := make([]string, 0, 8)
	trailing := strings.HasSuffix(p, "/")
	n := 0
	for _, s := range strings.Split(p[1:], "/") {
		n++
		if n > maxSegments {
			return "", ErrPathTooComplex
		}
		if i := strings.IndexByte(s, ';'); i >= 0 && (s[:i] == "." || s[:i] == "..") {
			return "", ErrDotSegmentParams
		}
		switch s {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, s)
		}
	}
	last := p[strings.LastIndexByte(p, '/')+1:]
	if last == "." || last == ".." {
		trailing = true
	}
	out := "/" + strings.Join(segs, "/")
	if trailing && len(segs) > 0 {
		out += "/"
	}
	return out, nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

func writeEscape(b *strings.Builder, v byte) {
	b.WriteByte('%')
	b.WriteByte(upperHex[v>>4])
	b.WriteByte(upperHex[v&15])
}

package ratelimit

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// maxInlineValue is the longest part value stored verbatim in a key; longer
// values (an oversized API key header) are replaced by a digest so a
// client cannot make each tracked bucket cost kilobytes.
const maxInlineValue = 64

// appendKey encodes c's bucket key under spec onto dst. Each part is a tag
// byte, a length and the value, so no two different inputs encode alike (a
// header value cannot forge a route boundary). A missing header encodes as
// empty: every request without it shares one bucket, which is the safe
// reading for "per API key" limits (anonymous traffic is limited
// together).
func appendKey(dst []byte, spec *ratelimit.KeySpec, c *filters.Context) []byte {
	for _, p := range spec.Parts {
		switch p.Kind {
		case ratelimit.KeyClientIP:
			ip := c.ClientIP().Unmap()
			if ip.Is6() && spec.IPv6Prefix < 128 {
				if pfx, err := ip.Prefix(spec.IPv6Prefix); err == nil {
					ip = pfx.Addr()
				}
			}
			raw := ip.As16()
			dst = appendPart(dst, byte(p.Kind), raw[:])
		case ratelimit.KeyRoute:
			name := ""
			if c.Route != nil {
				name = c.Route.Name
			}
			dst = appendPartString(dst, byte(p.Kind), name)
		case ratelimit.KeyHeader:
			// Any spelling: "x-api-key" is the same key as "X-Api-Key".
			dst = appendPart(dst, byte(p.Kind), c.RequestHeader(p.Header))
		}
	}
	return dst
}

func appendPart(dst []byte, tag byte, v []byte) []byte {
	if len(v) > maxInlineValue {
		sum := sha256.Sum256(v)
		dst = append(dst, tag|0x80)
		return append(dst, sum[:16]...)
	}
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

func appendPartString(dst []byte, tag byte, v string) []byte {
	if len(v) > maxInlineValue {
		return appendPart(dst, tag, []byte(v))
	}
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

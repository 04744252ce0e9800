// Package trust owns the gateway's one rule for who a request comes from:
// how address and identity lists in config (trusted proxies, the priority
// and chaos headers' trusted sources) are parsed, how the client identity is
// derived from the TCP peer and X-Forwarded-For, and what a verified TLS
// client certificate says about the client. Every trust decision in the
// gateway goes through here, so there is exactly one parser and one rule.
package trust

import (
	"fmt"
	"net/netip"
	"strings"
)

// Prefixes is a list of trusted source ranges. Lists are short (a few load
// balancer subnets), so a linear scan beats any index.
type Prefixes []netip.Prefix

// ParsePrefix accepts a CIDR ("10.0.0.0/8", "2001:db8::/32") or a bare
// address (a /32 or /128). Host bits are cleared ("10.1.2.3/8" is
// 10.0.0.0/8, as net.ParseCIDR reads it), an IPv4-mapped IPv6 range is read
// as the IPv4 range it maps (peers are compared unmapped), and zones are
// refused because a peer address never carries one.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: zones are not allowed", s)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR or address %q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: an IPv4-mapped range needs at least 96 bits", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Parse parses every entry of list; the error names the first bad entry's
// index, so callers can prefix it with their key path.
func Parse(list []string) (Prefixes, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(Prefixes, 0, len(list))
	for i, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, &EntryError{Index: i, Err: err}
		}
		out = append(out, p)
	}
	return out, nil
}

// EntryError is a bad entry in a list given to Parse.
type EntryError struct {
	Index int
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("[%d]: %v", e.Index, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// Validate reports every bad entry of list, each as "path[i]: reason", for
// config validation that lists all problems at once.
func Validate(path string, list []string, report func(keyPath, msg string)) {
	for i, s := range list {
		if _, err := ParsePrefix(s); err != nil {
			report(fmt.Sprintf("%s[%d]", path, i), err.Error())
		}
	}
}

// Empty reports whether nothing is trusted.
func (ps Prefixes) Empty() bool { return len(ps) == 0 }

// Contains reports whether a lies in one of the ranges. IPv4-mapped IPv6
// addresses count as IPv4, since dual-stack listeners report IPv4 peers
// that way; the invalid address is never trusted.
func (ps Prefixes) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

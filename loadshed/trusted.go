package loadshed

import "net/netip"

// trustedSet is a small list of source prefixes allowed to steer shedding
// (priority header, chaos header). Lists are short, so a linear scan beats
// any index.
type trustedSet []netip.Prefix

func newTrustedSet(cidrs []string) (trustedSet, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	out := make(trustedSet, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := parsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (t trustedSet) empty() bool { return len(t) == 0 }

// contains treats IPv4-mapped IPv6 addresses as IPv4, since dual-stack
// listeners report IPv4 clients that way.
func (t trustedSet) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

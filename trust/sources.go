package trust

import "fmt"

// Sources is who may send a gateway-internal header (the priority header,
// the chaos header): clients inside CIDRs, or clients whose verified TLS
// certificate carries one of Identities.
type Sources struct {
	CIDRs      Prefixes
	Identities Identities
}

// ParseSources parses both lists; errors name the list ("trusted_cidrs" or
// "trusted_identities") and the entry.
func ParseSources(cidrs, identities []string) (Sources, error) {
	p, err := Parse(cidrs)
	if err != nil {
		return Sources{}, fmt.Errorf("trusted_cidrs%w", err)
	}
	ids, err := ParseIdentities(identities)
	if err != nil {
		return Sources{}, fmt.Errorf("trusted_identities%w", err)
	}
	return Sources{CIDRs: p, Identities: ids}, nil
}

// Empty reports whether nobody is trusted.
func (s Sources) Empty() bool { return s.CIDRs.Empty() && len(s.Identities) == 0 }

// Trusts applies the one rule: the request's client address is in a
// trusted range, or its verified certificate names a trusted identity.
func (s Sources) Trusts(id Identity) bool {
	return s.CIDRs.Contains(id.Client) || len(s.Identities) > 0 && s.Identities.Matches(id.CertNames())
}

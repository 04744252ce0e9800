package loadshed

import "github.com/floodgate-dev/floodgate/trust"

// trustedSet is who may steer shedding (priority header, chaos header):
// source prefixes and verified client-certificate identities. Parsing and
// matching are the gateway's one trust rule (package trust); what is
// checked is the request's derived client identity, never a forwarding
// header.
type trustedSet = trust.Sources

func newTrustedSet(cidrs, identities []string) (trustedSet, error) {
	return trust.ParseSources(cidrs, identities)
}

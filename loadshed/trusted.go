package loadshed

import "github.com/floodgate-dev/floodgate/trust"

// trustedSet is a small list of source prefixes allowed to steer shedding
// (priority header, chaos header). Parsing and matching are the gateway's
// one trust rule (package trust); the address checked is the request's
// derived client identity, never a forwarding header.
type trustedSet = trust.Prefixes

func newTrustedSet(cidrs []string) (trustedSet, error) { return trust.Parse(cidrs) }

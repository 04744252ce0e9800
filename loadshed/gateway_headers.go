package loadshed

import "github.com/floodgate-dev/floodgate/trust"

// UntrustedHeaders calls drop with each configured gateway-internal request
// header (the priority header, the chaos header) that client is not trusted
// to send. The gateway strips those before forwarding, so a client that
// cannot steer this tier cannot steer a tier behind it either.
func (s *Shedder) UntrustedHeaders(client trust.Identity, drop func(name string)) {
	c := s.cur.Load()
	if name := c.scorer.prioHeader; name != "" && !c.scorer.prioTrusted.Trusts(client) {
		drop(name)
	}
	if ch := &c.cfg.Chaos; ch.Header != "" && !c.chaosTrusted.Trusts(client) {
		drop(ch.Header)
	}
}

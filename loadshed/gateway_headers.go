package loadshed

import "net/netip"

// UntrustedHeaders calls drop with each configured gateway-internal request
// header (the priority header, the chaos header) that client is not trusted
// to send. The gateway strips those before forwarding, so a client that
// cannot steer this tier cannot steer a tier behind it either.
func (s *Shedder) UntrustedHeaders(client netip.Addr, drop func(name string)) {
	c := s.cur.Load()
	if name := c.scorer.prioHeader; name != "" && !c.scorer.prioTrusted.Contains(client) {
		drop(name)
	}
	if ch := &c.cfg.Chaos; ch.Header != "" && !c.chaosTrusted.Contains(client) {
		drop(ch.Header)
	}
}

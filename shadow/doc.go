// Package shadow owns traffic shadowing policy: a route's shadow config
// (which origin, what fraction, how many at once, how large a body), the
// per-request sampling decision, the in-flight bound, and the comparison
// of a shadow's answer with the primary's. It does no I/O; the proxy sends
// the copies.
package shadow

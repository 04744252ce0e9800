package filters

import (
	"net/netip"

	"github.com/floodgate-dev/floodgate/trust"
)

// SetIdentity records who the request comes from. The gateway's driver
// derives it once per request (trust.Derive) before any filter runs.
func (c *Context) SetIdentity(id trust.Identity) { c.identity = id }

// ClientIP is the request's client identity: the TCP peer, or, when the
// peer is in server.trusted_proxies, the right-most X-Forwarded-For hop
// that is not a trusted proxy. Every trust decision (priority and chaos
// headers, rate-limit keys, forwarding headers, logs) uses this one address.
func (c *Context) ClientIP() netip.Addr { return c.identity.Client }

// PeerIP is the TCP peer's address, which differs from ClientIP behind a
// trusted proxy.
func (c *Context) PeerIP() netip.Addr { return c.identity.Peer }

// PeerTrusted reports whether the TCP peer is a trusted proxy, whose
// forwarding headers are believed and extended.
func (c *Context) PeerTrusted() bool { return c.identity.PeerTrusted }

// Identity returns the whole identity record.
func (c *Context) Identity() trust.Identity { return c.identity }

package proxy

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/trust"
)

// identify derives the request's client identity once, before any filter
// runs: the TCP peer, or the right-most untrusted X-Forwarded-For hop when
// the peer is a trusted proxy. X-Forwarded-For is read in any spelling,
// since the server keeps header names as sent.
func identify(ctx *fasthttp.RequestCtx, proxies trust.Prefixes) trust.Identity {
	peer := remoteIP(ctx)
	if !proxies.Contains(peer) {
		return trust.Identity{Peer: peer, Client: peer, TLS: connTLS(ctx)}
	}
	var buf [4][]byte
	id := trust.Derive(peer, proxies, peekFold(&ctx.Request.Header, "X-Forwarded-For", buf[:0]))
	id.TLS = connTLS(ctx)
	return id
}

func remoteIP(ctx *fasthttp.RequestCtx) netip.Addr {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

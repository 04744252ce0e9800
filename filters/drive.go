package filters

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/trust"
)

// Dispatcher is what the request driver asks of the server it drives for.
type Dispatcher interface {
	// Dispatch completes the Context (path, route, completion hooks; or a
	// local answer such as a 400) and returns the chain to run.
	Dispatch(c *Context) *Chain
	// Recovered is told of a panic the driver turned into a 500, to log it.
	Recovered(c *Context, panicValue any)
}

// Drive is the request driver: the one path every request takes, in the
// gateway's server and in the test harness alike. It acquires a Context
// for rc with the request's method, host and client address, lets d pick
// the chain, runs it (a panic anywhere becomes a 500 with
// CategoryInternalError instead of killing the connection's goroutine),
// writes the response headers filters asked for and the status category,
// and releases the Context; its OnDone hooks run once the response body is
// complete.
func Drive(rc *fasthttp.RequestCtx, d Dispatcher) {
	c := AcquireContext()
	c.Request = rc
	c.Method = methodString(rc.Method())
	c.Host = hostString(rc.Host())
	// The peer, until the dispatcher derives the identity behind trusted
	// proxies (trust.Derive).
	peer := RemoteIP(rc)
	c.SetIdentity(trust.Identity{Peer: peer, Client: peer})
	runRecovering(d, c)
	c.ApplyResponseHeaders()
	c.Request = nil
	c.Release()
}

// maxInternedHosts bounds hostString's table: a gateway serves few
// distinct host names, and junk ones (any client can send any Host) must
// not grow it without bound. Past it, a name is copied per request.
const maxInternedHosts = 256

var (
	internedHosts   atomic.Pointer[map[string]string]
	internedHostsMu sync.Mutex
)

// hostString returns the Host header as a string, shared between the
// requests that send the same name rather than allocated per request. The
// table is copied on write, so lookups take no lock.
func hostString(b []byte) string {
	if m := internedHosts.Load(); m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
	}
	s := string(b)
	internedHostsMu.Lock()
	defer internedHostsMu.Unlock()
	var old map[string]string
	if m := internedHosts.Load(); m != nil {
		old = *m
	}
	if len(old) >= maxInternedHosts {
		return s
	}
	next := make(map[string]string, len(old)+1)
	maps.Copy(next, old)
	next[s] = s
	internedHosts.Store(&next)
	return s
}

// methodString returns the standard methods as constants, so the common
// case costs no allocation; any other method is copied.
func methodString(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	}
	return string(m)
}

func runRecovering(d Dispatcher, c *Context) {
	defer func() {
		if r := recover(); r != nil {
			c.Err = fmt.Errorf("panic: %v", r)
			c.Respond(http.StatusInternalServerError, CategoryInternalError, "internal error")
			d.Recovered(c, r)
		}
	}()
	if chain := d.Dispatch(c); chain != nil {
		chain.Run(c)
	}
}

// peerAddresser is a connection that knows its peer's address already
// (the edge listener's connections read it once, at accept).
type peerAddresser interface{ PeerAddr() netip.Addr }

// RemoteIP is the address of the connection rc arrived on.
func RemoteIP(rc *fasthttp.RequestCtx) netip.Addr {
	if p, ok := rc.Conn().(peerAddresser); ok {
		if a := p.PeerAddr(); a.IsValid() {
			return a
		}
	}
	if a, ok := rc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

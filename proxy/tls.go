package proxy

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/proxy/edge"
	"github.com/floodgate-dev/floodgate/tlsconf"
	"github.com/floodgate-dev/floodgate/trust"
)

// plainHTTPAnswer is what a client that speaks plain HTTP to the TLS
// listener reads before the connection closes: it cannot read anything
// encrypted, and the reason is worth more to it than a reset.
var plainHTTPAnswer = []byte("HTTP/1.1 400 Bad Request\r\n" +
	"Connection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	filters.StatusHeader + ": " + string(filters.CategoryClientError) + "\r\n" +
	"Content-Length: 48\r\n" +
	"\r\n" +
	"This port speaks TLS: use https:// to reach it.\n")

// handshakeLogEvery bounds how often failed handshakes are logged: scanners
// and clients with stale trust stores fail them in bulk.
const handshakeLogEvery = time.Second

// tlsStats counts what the TLS listener saw before any request.
type tlsStats struct {
	handshakeErrors atomic.Uint64
	lastLog         atomic.Int64 // unix nanoseconds
}

// ServeTLS is Serve for a TLS listener: the same server and options, with
// every accepted connection wrapped in TLS using store's certificates
// (chosen by SNI, reloaded by the store). Connections over
// server.max_connections are closed without an answer (a plain-text 503
// means nothing to a TLS client, and a handshake would cost what the cap
// protects).
func (s *Server) ServeTLS(ln net.Listener, store *tlsconf.Store) error {
	return s.serve(ln, store)
}

// TLSHandshakeErrors counts client TLS handshakes that failed (no shared
// version or cipher, a client certificate refused, a client that rejected
// our certificate, plain HTTP on the TLS port, a timeout).
func (s *Server) TLSHandshakeErrors() uint64 { return s.tls.handshakeErrors.Load() }

func (s *Server) handshakeError(err error) {
	n := s.tls.handshakeErrors.Add(1)
	now := time.Now().UnixNano()
	last := s.tls.lastLog.Load()
	if now-last >= int64(handshakeLogEvery) && s.tls.lastLog.CompareAndSwap(last, now) {
		s.logger.Info("TLS handshake failed", "reason", tlsconf.Describe(err), "failures_total", n)
	}
}

func (s *Server) listenerOptions(store *tlsconf.Store) edge.ListenerOptions {
	opts := edge.ListenerOptions{
		WriteProgressTimeout: s.snap.Load().Config.Server.WriteProgressTimeout,
		OnAcceptError:        s.acceptError,
		// Idle keep-alive connections leave fasthttp (and its buffers)
		// after edge.DefaultParkIdleAfter.
		Server: s.srv,
	}
	if store != nil {
		opts.TLS = store.TLSConfig()
		opts.HandshakeTimeout = s.snap.Load().Config.Server.TLS.HandshakeTimeout
		opts.OnHandshakeError = s.handshakeError
		opts.PlainHTTPAnswer = plainHTTPAnswer
	}
	return opts
}

// connTLS is the request's TLS session, nil over plain HTTP.
func connTLS(ctx *fasthttp.RequestCtx) *trust.TLS {
	if tc, ok := ctx.Conn().(*edge.TLSConn); ok {
		return tc.Info()
	}
	if cs := ctx.TLSConnectionState(); cs != nil {
		// fasthttp wraps connections when max_connections_per_ip is set.
		return trust.FromConnectionState(cs)
	}
	return nil
}

// The schemes X-Forwarded-Proto reports (read only).
var schemeHTTP, schemeHTTPS = []byte("http"), []byte("https")

// forwardedProto is the scheme the client used, for X-Forwarded-Proto.
func forwardedProto(c *filters.Context) []byte {
	if c.Identity().TLS != nil {
		return schemeHTTPS
	}
	return schemeHTTP
}

// ServeRedirect serves ln, a plain-HTTP listener, answering every request
// with a redirect to the same host, path and query over https: 301 for GET
// and HEAD, 308 (which keeps the method and body) for the rest. The Host
// header is checked as on the main listener; httpsPort is left out of the
// Location when it is 443. Answers run through the no-route chain's
// filters, so they are logged and counted like any other.
func (s *Server) ServeRedirect(ln net.Listener, httpsPort int) error {
	srv := edge.NewServer(func(ctx *fasthttp.RequestCtx) {
		s.inFlight.Add(1)
		filters.Drive(ctx, redirectAnswer{s: s, port: httpsPort})
	}, listenerLimits(s.snap.Load()))
	srv.Logger = fasthttpLogger{s.logger}
	s.redirect.Store(&redirectServer{srv: srv, ln: ln})
	if s.stopped.Load() {
		_ = ln.Close() // Shutdown came first: return at once
	}
	return srv.Serve(edge.Listen(ln, edge.ListenerOptions{
		WriteProgressTimeout: s.snap.Load().Config.Server.WriteProgressTimeout,
		OnAcceptError:        s.acceptError,
	}))
}

// redirectServer is the redirect listener's server and listener, which
// Shutdown stops.
type redirectServer struct {
	srv *fasthttp.Server
	ln  net.Listener
}

// redirectAnswer dispatches a request on the redirect listener.
type redirectAnswer struct {
	s    *Server
	port int
}

func (r redirectAnswer) Dispatch(c *filters.Context) *filters.Chain {
	c.OnDone(r.s.doneHook)
	snap := r.s.snap.Load()
	ctx := c.Request
	c.SetIdentity(identify(ctx, snap.TrustedProxies))
	h := &ctx.Request.Header
	uri := h.RequestURI()
	c.Path = logPath(uri)
	if status, reason := checkHead(h); status != 0 {
		ctx.SetConnectionClose()
		c.Respond(status, filters.CategoryClientError, reason)
		return snap.NoRoute
	}
	t, reason := parseTarget(uri)
	switch {
	case reason != "":
	case t.asterisk:
		reason = "the asterisk target has no https equivalent"
	case t.authority != nil:
		h.SetHostBytes(t.authority)
		uri = uri[bytes.Index(uri, []byte("://"))+3+len(t.authority):]
		if len(uri) == 0 || uri[0] != '/' {
			uri = append([]byte("/"), uri...)
		}
	}
	host := h.Host()
	if reason == "" && !validHost(host) {
		reason = "missing or invalid Host header"
	}
	if reason != "" {
		ctx.SetConnectionClose()
		c.Respond(http.StatusBadRequest, filters.CategoryClientError, reason)
		return snap.NoRoute
	}
	loc := make([]byte, 0, 8+len(host)+6+len(uri))
	loc = append(loc, "https://"...)
	loc = append(loc, hostWithoutPort(host)...)
	if r.port != 443 {
		loc = append(loc, ':')
		loc = strconv.AppendInt(loc, int64(r.port), 10)
	}
	loc = append(loc, uri...)
	status := http.StatusPermanentRedirect
	if m := h.Method(); string(m) == http.MethodGet || string(m) == http.MethodHead {
		status = http.StatusMovedPermanently
	}
	c.Respond(status, filters.CategorySuccess, "")
	c.SetResponseHeader("Location", string(loc))
	if ctx.Request.Header.ContentLength() != 0 {
		// The body is not read: closing is cheaper than draining it.
		ctx.SetConnectionClose()
	}
	return snap.NoRoute
}

func (r redirectAnswer) Recovered(c *filters.Context, v any) { r.s.Recovered(c, v) }

// hostWithoutPort strips the port from a valid Host value.
func hostWithoutPort(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// RedirectPort is the port the redirect listener sends clients to: the
// configured https_port, else server.listen's port.
func RedirectPort(r tlsconf.RedirectConfig, serverListen string) int {
	if r.HTTPSPort > 0 {
		return r.HTTPSPort
	}
	if _, p, err := net.SplitHostPort(serverListen); err == nil {
		if n, err := strconv.Atoi(p); err == nil && n > 0 {
			return n
		}
	}
	return 443
}

var _ filters.Dispatcher = redirectAnswer{}

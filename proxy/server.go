package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/proxy/edge"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// Server is the client-facing HTTP server. It serves every request against
// the current Snapshot, which Swap replaces atomically on reload.
type Server struct {
	snap     atomic.Pointer[Snapshot]
	builder  *Builder
	srv      *fasthttp.Server
	logger   *slog.Logger
	inFlight atomic.Int64
	conns    atomic.Int64
	doneHook func(*filters.Context)
	// shuttingDown is set by BeginShutdown (see lifecycle.go).
	shuttingDown atomic.Bool
	// ln is the capped, tracking listener Serve wraps (conn_limit.go);
	// edgeLn is the edge listener over it, which parks idle connections.
	ln     atomic.Pointer[connListener]
	edgeLn atomic.Pointer[edge.Listener]
	// stopped is set by Shutdown; with ln it closes a listener whose
	// Serve had not started yet when Shutdown ran.
	stopped atomic.Bool
	// maxConns is the effective server.max_connections.
	maxConns int
	accepts  acceptErrors
	// tls counts failed client handshakes (tls.go).
	tls tlsStats
	// redirect is the plain listener's server that sends clients to
	// https (ServeRedirect), when there is one.
	redirect atomic.Pointer[redirectServer]
}

// NewServer creates a server for snap. Listener-level settings (buffer
// sizes, idle and header timeouts, connection cap) are fixed here and need
// a restart to change; per-request ones are read from the current
// snapshot.
func NewServer(b *Builder, snap *Snapshot, logger *slog.Logger) *Server {
	s := &Server{builder: b, logger: logger}
	s.snap.Store(snap)
	s.doneHook = func(*filters.Context) { s.inFlight.Add(-1) }
	limits := listenerLimits(snap)
	s.maxConns = limits.MaxConnections
	// fasthttp's own cap is a backstop: connListener enforces
	// max_connections with a status category.
	limits.MaxConnections *= 2
	s.srv = edge.NewServer(s.handle, limits)
	s.srv.ErrorHandler = s.handleProtocolError
	s.srv.HeaderReceived = s.headerReceived
	s.srv.ExpectHandler = s.expect
	s.srv.ConnState = s.connState
	s.srv.Logger = fasthttpLogger{logger}
	warnFDLimit(logger, s.maxConns)
	return s
}

// Handler is the request handler Serve runs, for driving the server
// without a listener (the in-process benchmark).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// listenerLimits are the restart-only listener settings of snap's config.
// max_connections 0 means edge.AutoMaxConnections (below the fd limit).
func listenerLimits(snap *Snapshot) edge.Limits {
	sc := snap.Config.Server
	maxConns := sc.MaxConnections
	if maxConns <= 0 {
		maxConns = edge.AutoMaxConnections()
	}
	return edge.Limits{
		MaxHeaderSize:       int(sc.MaxHeaderSize),
		ReadHeaderTimeout:   sc.ReadHeaderTimeout,
		IdleTimeout:         sc.IdleTimeout,
		WriteTimeout:        sc.WriteTimeout,
		MaxConnections:      maxConns,
		MaxConnectionsPerIP: sc.MaxConnectionsPerIP,
	}
}

// MaxConnections is the effective client connection cap (server.
// max_connections, or the automatic one).
func (s *Server) MaxConnections() int { return s.maxConns }

// warnFDLimit logs when the connection cap leaves no file descriptors for
// origin connections: idle clients alone could then exhaust them.
func warnFDLimit(logger *slog.Logger, maxConns int) {
	if limit, ok := edge.OpenFileLimit(); ok && uint64(maxConns) >= limit {
		logger.Warn("server.max_connections is not below the open-file limit: idle clients can exhaust file descriptors; lower it or raise the limit (0 picks half the limit)",
			"max_connections", maxConns, "open_file_limit", limit)
	}
}

// Snapshot returns the snapshot new requests use.
func (s *Server) Snapshot() *Snapshot { return s.snap.Load() }

// Swap makes snap current. Requests already running keep the old one.
func (s *Server) Swap(snap *Snapshot) {
	s.snap.Store(snap)
}

// InFlight is the number of requests being served, including responses
// still streaming.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// OpenConnections is the number of open client connections, WebSocket
// tunnels and parked idle connections included (both have left fasthttp's
// count).
func (s *Server) OpenConnections() int64 {
	n := s.conns.Load() + s.builder.tunnels.Running()
	if el := s.edgeLn.Load(); el != nil {
		n += el.ParkedConnections()
	}
	return n
}

// OpenTunnels is the number of WebSocket tunnels relaying bytes.
func (s *Server) OpenTunnels() int64 { return s.builder.tunnels.Running() }

// Serve accepts connections on ln until Shutdown, at most
// server.max_connections at once. Inside the cap, edge.Listen makes a
// failing accept (out of file descriptors) back off and retry instead of
// ending Serve, and gives every client connection the write progress
// timeout and the chunked-framing bound.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, nil) }

// serve is Serve, over TLS with store's certificates when store is set
// (ServeTLS): TLS wraps the listener, the server and its options are the
// same.
func (s *Server) serve(ln net.Listener, store *tlsconf.Store) error {
	cl := newConnListener(ln, s.maxConns, s.logger)
	cl.silentRefusal = store != nil
	s.ln.Store(cl)
	if s.stopped.Load() {
		_ = ln.Close() // Shutdown came first: return at once
	}
	el := edge.Listen(cl, s.listenerOptions(store))
	s.edgeLn.Store(el)
	return s.srv.Serve(el)
}

// RefusedConnections counts connections refused at server.max_connections.
func (s *Server) RefusedConnections() uint64 {
	if cl := s.ln.Load(); cl != nil {
		return cl.refused.Load()
	}
	return 0
}

// Shutdown stops accepting connections and waits for in-flight requests
// and open WebSocket tunnels to finish or ctx to end, whichever is first;
// tunnels still open then are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopped.Store(true)
	if r := s.redirect.Load(); r != nil {
		// Redirects are answered at once: nothing there to drain for long.
		_ = r.srv.ShutdownWithContext(ctx)
		_ = r.ln.Close() // in case its Serve had not started
	}
	err := s.srv.ShutdownWithContext(ctx)
	if cl := s.ln.Load(); cl != nil {
		// fasthttp closes only a listener its Serve has registered; a
		// Serve that started late would otherwise accept forever.
		_ = cl.Listener.Close()
	}
	if err == nil {
		// fasthttp does not wait for hijacked connections.
		err = s.builder.tunnels.wait(ctx)
	}
	if err != nil {
		if n := s.builder.tunnels.closeAll("drain timeout reached"); n > 0 {
			s.logger.Warn("closed open WebSocket tunnels at the drain timeout", "tunnels", n)
		}
	}
	return err
}

func (s *Server) connState(c net.Conn, st fasthttp.ConnState) {
	edge.NoteConnState(c, st)
	switch st {
	case fasthttp.StateNew:
		s.conns.Add(1)
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		s.conns.Add(-1)
	}
}

// headerReceived gives the body its own deadline: ReadTimeout covers only
// the header so a slow-header client is cut off quickly, while a large
// upload gets server.body_timeout. A request without a body (no
// Content-Length or a zero one, not chunked: RFC 9112 6.3) reads nothing
// more before its next request, whose wait re-arms the deadline, so it
// keeps the header's and spares the socket a timer change.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if cl := h.ContentLength(); cl == 0 || cl == -2 {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{ReadTimeout: s.snap.Load().Config.Server.BodyTimeout}
}

// expect refuses an oversized body before the client sends it. fasthttp
// then skips the handler, so the refusal runs the no-route chain here:
// it is counted, logged and carries its status category like any answer.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	limit := s.snap.Load().Config.Server.MaxBodySize
	if cl := ctx.Request.Header.ContentLength(); cl > 0 && int64(cl) > int64(limit) {
		s.answerLocally(ctx, http.StatusRequestEntityTooLarge, filters.CategoryRequestTooLarge,
			"request body of "+strconv.Itoa(cl)+" bytes exceeds the limit of "+limit.String()+" (refused before 100 Continue)", nil)
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusContinue
}

// handle serves one request through the request driver (filters.Drive);
// Dispatch below is the server's part of it.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	s.inFlight.Add(1)
	filters.Drive(ctx, s)
}

// Dispatch checks framing and the path and routes the request: the chain
// of the matching route, or the no-route chain (which also carries local
// rejections, so they get the outbound filters).
func (s *Server) Dispatch(c *filters.Context) *filters.Chain {
	c.OnDone(s.doneHook)
	snap := s.snap.Load()
	ctx := c.Request
	id := identify(ctx, snap.TrustedProxies)
	c.SetIdentity(id)
	if id.TLS != nil && snap.HSTS != "" {
		c.SetResponseHeader("Strict-Transport-Security", snap.HSTS)
	}
	if release := boundChunkedFraming(ctx, int64(snap.Config.Server.MaxBodySize)); release != nil {
		c.OnDone(func(*filters.Context) { release() })
	}
	s.closeIfShuttingDown(ctx)
	if status, cat, reason := s.admit(ctx, c, snap); status != 0 {
		if status >= 400 {
			ctx.SetConnectionClose()
		}
		c.Respond(status, cat, reason)
	} else if route := snap.Table.Match(c.Host, c.Method, c.Path, requestHeaderLookup{&ctx.Request.Header}); route != nil {
		c.Route = route
		c.UpstreamPath = route.Apply(c.Path)
		if status, cat, reason := upgradeRefusal(&ctx.Request.Header, &snap.Config.Routes[route.Index]); status != 0 {
			// Refused before the route's inbound filters; its outbound
			// ones still log and count the answer under the route.
			ctx.SetConnectionClose()
			c.Respond(status, cat, reason)
		}
		return snap.Chains[route.Index]
	}
	return snap.NoRoute
}

// Recovered logs a panic the driver turned into a 500.
func (s *Server) Recovered(c *filters.Context, v any) {
	s.logger.Error("panic serving request", "panic", v, "path", c.Path, "route", routeName(c))
}

// admit rejects requests the gateway must not forward: ambiguous framing
// (request smuggling), a version, header name, Host or target that RFC
// 9110/9112 forbid, a path that doesn't normalize, a body over the limit.
// It answers OPTIONS * itself (200, no body). On success it sets c.Host
// (the target's authority for an absolute-form target, which then
// replaces the Host header, so routing and the origin agree) and c.Path.
func (s *Server) admit(ctx *fasthttp.RequestCtx, c *filters.Context, snap *Snapshot) (int, filters.Category, string) {
	h := &ctx.Request.Header
	if status, reason := checkHead(h); status != 0 {
		return status, filters.CategoryClientError, reason
	}
	t, reason := parseTarget(h.RequestURI())
	if reason != "" {
		c.Path = string(h.RequestURI())
		return http.StatusBadRequest, filters.CategoryClientError, reason
	}
	if t.authority != nil {
		// RFC 9112 3.2.2: the target's authority wins over Host.
		h.SetHostBytes(t.authority)
		c.Host = string(t.authority)
	}
	if len(h.Host()) == 0 {
		return http.StatusBadRequest, filters.CategoryClientError, "missing Host header"
	}
	if !validHost(h.Host()) {
		return http.StatusBadRequest, filters.CategoryClientError, "invalid Host header"
	}
	if t.asterisk {
		c.Path = "*"
		if c.Method != http.MethodOptions {
			return http.StatusBadRequest, filters.CategoryClientError, "the asterisk target is for OPTIONS only"
		}
		// OPTIONS * asks about the server itself (RFC 9110 9.3.7).
		return http.StatusOK, filters.CategorySuccess, ""
	}
	// The raw path in the Context's buffer: the normalizer returns it
	// unchanged when it is already canonical, so a request path costs no
	// allocation (see filters.Context.SetPath for its lifetime).
	c.SetPath(t.path)
	path, err := snap.PathPolicy().Normalize(c.Path)
	if err != nil {
		return http.StatusBadRequest, filters.CategoryClientError, "bad request path: " + err.Error()
	}
	c.Path = path
	if cl := h.ContentLength(); cl > 0 && int64(cl) > int64(snap.Config.Server.MaxBodySize) {
		return http.StatusRequestEntityTooLarge, filters.CategoryRequestTooLarge,
			"request body of " + strconv.Itoa(cl) + " bytes exceeds the limit of " + snap.Config.Server.MaxBodySize.String()
	}
	return 0, "", ""
}

// logPath is the path a request the chain never saw is logged under: the
// target's path when it parses, the raw target otherwise.
func logPath(uri []byte) string {
	if t, reason := parseTarget(uri); reason == "" && !t.asterisk {
		return string(t.path)
	}
	return string(uri)
}

// handleProtocolError answers requests fasthttp could not parse. The
// response still goes through the outbound filters, so it is logged and
// counted like any other.
func (s *Server) handleProtocolError(ctx *fasthttp.RequestCtx, err error) {
	status, cat, reason := classifyProtocolError(err)
	s.answerLocally(ctx, status, cat, reason, err)
}

// answerLocally answers a request the chain never saw (unparseable, or
// refused before its body) through the request driver and the no-route
// chain's filters, so it gets the same headers, metrics and access-log line
// as any other.
func (s *Server) answerLocally(ctx *fasthttp.RequestCtx, status int, cat filters.Category, reason string, err error) {
	s.inFlight.Add(1)
	ctx.SetConnectionClose()
	filters.Drive(ctx, localAnswer{s: s, status: status, cat: cat, reason: reason, err: err})
}

// localAnswer dispatches a request answered before routing: the answer is
// given, the no-route chain's filters run over it.
type localAnswer struct {
	s      *Server
	status int
	cat    filters.Category
	reason string
	err    error
}

func (l localAnswer) Dispatch(c *filters.Context) *filters.Chain {
	c.OnDone(l.s.doneHook)
	c.Path = logPath(c.Request.Request.Header.RequestURI())
	c.Err = l.err
	c.Respond(l.status, l.cat, l.reason)
	return l.s.snap.Load().NoRoute
}

func (l localAnswer) Recovered(c *filters.Context, v any) { l.s.Recovered(c, v) }

func classifyProtocolError(err error) (int, filters.Category, string) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		return http.StatusRequestHeaderFieldsTooLarge, filters.CategoryHeaderTooLarge, "request header too large"
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, filters.CategoryClientTimeout, "timed out reading the request"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge, filters.CategoryRequestTooLarge, "request body too large"
	case errors.Is(err, fasthttp.ErrDuplicateContentLength):
		return http.StatusBadRequest, filters.CategoryClientError, "conflicting Content-Length headers"
	case errors.Is(err, fasthttp.ErrUnsupportedTransferEncoding):
		return http.StatusBadRequest, filters.CategoryClientError, "unsupported Transfer-Encoding"
	}
	return http.StatusBadRequest, filters.CategoryClientError, "malformed request"
}

func routeName(c *filters.Context) string {
	if c.Route == nil {
		return ""
	}
	return c.Route.Name
}

// fasthttpLogger routes fasthttp's own messages into slog at debug level:
// they are per-connection noise (client resets) that metrics already count.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}

var (
	_ filters.Dispatcher = (*Server)(nil)
	_ filters.Dispatcher = localAnswer{}
)

// Package edge owns the fasthttp server settings of every client-facing
// listener: header names kept exactly as sent, no invented response headers,
// streamed request bodies, and the limits server config controls. The
// gateway's server and the test harnesses all build their fasthttp.Server
// here, so a test sees the very options production runs with.
package edge

import (
	"time"

	"github.com/valyala/fasthttp"
)

// BufferedBodyLimit is how much request body fasthttp reads ahead before
// the handler runs. Request bodies stream, so this is not the body limit;
// the gateway enforces server.max_body_size itself while streaming.
const BufferedBodyLimit = 64 << 10

// WriteBufferSize is the response write buffer. fasthttp sends a header and
// a body that overflow its buffer in one writev only on a bare
// *net.TCPConn, and the edge's connections are wrapped (edge.Conn), so a
// response larger than the buffer costs a second write syscall: measured
// 3.2 writes per proxied 16 KiB request against the minimal proxy's 2.1.
// 32 KiB holds header and body of responses up to about 32 KiB in one write;
// the buffer is taken from a pool per response and given back after it
// (ReduceMemoryUsage), so idle connections do not hold it.
const WriteBufferSize = 32 << 10

// DefaultMaxHeaderSize is the read buffer, hence the largest request line
// plus headers, when Limits leaves it zero (server.max_header_size's
// default).
const DefaultMaxHeaderSize = 16 << 10

// Limits are the listener settings server config controls. Zero values
// mean fasthttp's defaults (no timeout, no cap) except MaxHeaderSize.
type Limits struct {
	MaxHeaderSize int
	// ReadHeaderTimeout bounds reading the request line and headers.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	WriteTimeout      time.Duration
	// MaxConnections caps concurrent connections; MaxConnectionsPerIP caps
	// them per client address (extra connections get 429 and are closed).
	MaxConnections      int
	MaxConnectionsPerIP int
}

// NewServer returns a fasthttp server for h with the gateway's options.
// Callers add hooks (error handler, header-received, expect, conn state,
// logger) but must not change the options set here.
func NewServer(h fasthttp.RequestHandler, l Limits) *fasthttp.Server {
	if l.MaxHeaderSize <= 0 {
		l.MaxHeaderSize = DefaultMaxHeaderSize
	}
	return &fasthttp.Server{
		Handler: h,
		// The gateway forwards what it was sent: no Server header, no
		// default Content-Type on responses that have none, header names in
		// the client's spelling (so every lookup must be case-insensitive:
		// see the header helpers in package proxy).
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		StreamRequestBody:             true,
		MaxRequestBodySize:            BufferedBodyLimit,
		ReadBufferSize:                l.MaxHeaderSize,
		WriteBufferSize:               WriteBufferSize,
		ReadTimeout:                   l.ReadHeaderTimeout,
		IdleTimeout:                   l.IdleTimeout,
		WriteTimeout:                  l.WriteTimeout,
		Concurrency:                   l.MaxConnections,
		MaxConnsPerIP:                 l.MaxConnectionsPerIP,
		CloseOnShutdown:               true,
		ReduceMemoryUsage:             true,
		TCPKeepalive:                  true,
		SecureErrorLogMessage:         true,
		// fasthttp would read the clock for RequestCtx.Time before every
		// handler call; the gateway times requests itself (filters.Context)
		// and never asks, so it is read only if someone does.
		LazyRequestTime: true,

		// A hijacked connection (a WebSocket tunnel) is closed by its
		// owner, so fasthttp releases the request context and read buffer
		// as soon as the tunnel has taken over.
		KeepHijackedConns: true,
	}
}

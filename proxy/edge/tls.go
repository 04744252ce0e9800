package edge

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/floodgate-dev/floodgate/trust"
)

// TLSConn is an accepted client connection that speaks TLS: a *Conn (so
// byte counting and the write progress timeout apply to the plaintext, as
// over plain TCP) over a crypto/tls server connection. fasthttp recognises
// it as TLS (Handshake and ConnectionState), so the handshake runs on the
// connection's own goroutine, never in the accept loop, bounded by
// HandshakeTimeout.
type TLSConn struct {
	*Conn
	tls     *tls.Conn
	timeout time.Duration
	opts    *ListenerOptions

	once sync.Once
	err  error
	info *trust.TLS
}

func newTLSConn(c net.Conn, cfg *tls.Config, opts *ListenerOptions, p *parking) *TLSConn {
	tc := tls.Server(c, cfg)
	conn := &TLSConn{Conn: newConn(tc, opts.WriteProgressTimeout, p), tls: tc, timeout: opts.HandshakeTimeout, opts: opts}
	conn.Conn.outer = conn
	return conn
}

// Handshake runs the TLS handshake once; later calls return its result. A
// failed handshake is reported to OnHandshakeError; a client that sent
// plain HTTP gets PlainHTTPAnswer in plain text before the connection
// closes.
func (c *TLSConn) Handshake() error {
	c.once.Do(c.handshake)
	return c.err
}

func (c *TLSConn) handshake() {
	if c.timeout > 0 {
		_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
	}
	c.err = c.tls.Handshake()
	if c.err != nil {
		var rh tls.RecordHeaderError
		if errors.As(c.err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) && len(c.opts.PlainHTTPAnswer) > 0 {
			_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = rh.Conn.Write(c.opts.PlainHTTPAnswer)
		}
		if c.opts.OnHandshakeError != nil {
			c.opts.OnHandshakeError(c.err)
		}
		return
	}
	// fasthttp arms its own read and write deadlines for the first request.
	_ = c.Conn.SetDeadline(time.Time{})
	cs := c.tls.ConnectionState()
	c.info = trust.FromConnectionState(&cs)
}

// looksLikeHTTP reports a TLS record header that is the start of a plain
// HTTP request.
func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH"} {
		if bytes.HasPrefix([]byte(m), hdr) || bytes.HasPrefix(hdr, []byte(m)) {
			return true
		}
	}
	return false
}

// ConnectionState is the TLS session's state.
func (c *TLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// Info describes the session for the request's identity (version, SNI,
// verified client certificate names), computed once per connection; nil
// if the handshake failed.
func (c *TLSConn) Info() *trust.TLS {
	if c.Handshake() != nil {
		return nil
	}
	return c.info
}

// Read ends the connection quietly (io.EOF) when the handshake failed:
// there is no HTTP to answer on it, and the failure is already reported.
func (c *TLSConn) Read(p []byte) (int, error) {
	if c.Handshake() != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

func (c *TLSConn) Write(p []byte) (int, error) {
	if err := c.Handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// ConnOf returns the *Conn under an accepted connection (plain or TLS),
// or nil for a connection the edge listener did not accept.
func ConnOf(c net.Conn) *Conn {
	switch v := c.(type) {
	case *Conn:
		return v
	case *TLSConn:
		return v.Conn
	}
	return nil
}

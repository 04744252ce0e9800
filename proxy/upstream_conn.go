package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/floodgate-dev/floodgate/internal/deadline"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// errStaleConn means a pooled connection was found closed by the origin
// before any byte of the request was written, so the request can be sent
// again on another connection whatever its method.
var errStaleConn = errors.New("pooled origin connection was closed by the origin while idle")

// dialError marks failures to establish a connection, so they map to
// origin_connect_error rather than reset or timeout. handshake marks a
// TLS handshake that failed (the reason then names the TLS failure).
type dialError struct {
	err       error
	handshake bool
}

func (e *dialError) Error() string {
	if e.handshake {
		return "TLS handshake with origin failed: " + tlsconf.Describe(e.err)
	}
	return "connecting to origin: " + e.err.Error()
}
func (e *dialError) Unwrap() error { return e.err }

// probeAfterIdle is how long a pooled connection must have been idle before
// it is probed (see alive) on reuse. An origin closes an idle keep-alive
// connection only after its own idle timeout, which is seconds for every
// common server (and never below this bound in practice), so a connection
// reused sooner cannot have been closed for idleness; under load, when
// connections are reused within microseconds, no request pays the probe's
// syscall. Without the bound, every request cost one extra recvfrom.
const probeAfterIdle = 50 * time.Millisecond

// upstreamConn applies the route's response timeout to every read and write
// rather than as one deadline for the whole exchange. fasthttp sets a single
// deadline per request, which would cut a long download or an event stream
// that is still moving; per-operation deadlines cut only a stalled one.
// It also probes a reused connection that sat idle before its first write.
type upstreamConn struct {
	net.Conn
	timeout time.Duration
	// probeAfter is probeAfterIdle; a field so tests can move the bound.
	probeAfter time.Duration
	// readSinceWrite is set once a response byte arrived; the next write
	// starts a new request on a reused connection, which is when a
	// connection the origin closed while idle must be detected.
	readSinceWrite bool
	// lastRead is when the last response byte arrived: the start of the
	// connection's idle time.
	lastRead time.Time
	// wroteAt is when the last write started; the read that follows it
	// uses it instead of a clock read of its own.
	wroteAt time.Time
	// readDeadline and writeDeadline are the deadlines currently armed.
	readDeadline, writeDeadline time.Time
	// raw is the TCP connection under a TLS one (the socket alive probes);
	// Conn itself otherwise.
	raw net.Conn
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	// The first read after a request starts microseconds after its write:
	// the write's clock reading serves it (an earlier now only arms the
	// deadline and dates the read a little early, both on the safe side).
	now := c.wroteAt
	if c.readSinceWrite || now.IsZero() {
		now = time.Now()
	}
	if c.timeout > 0 {
		if d, ok := deadline.Due(now, c.readDeadline, c.timeout, time.Time{}); ok {
			if err := c.Conn.SetReadDeadline(d); err != nil {
				return 0, err
			}
			c.readDeadline = d
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.readSinceWrite = true
		c.lastRead = now
	}
	return n, err
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	now := time.Now()
	c.wroteAt = now
	if c.readSinceWrite {
		c.readSinceWrite = false
		if now.Sub(c.lastRead) >= c.probeAfter && !alive(c.socket()) {
			return 0, errStaleConn
		}
	}
	if c.timeout > 0 {
		if d, ok := deadline.Due(now, c.writeDeadline, c.timeout, time.Time{}); ok {
			if err := c.Conn.SetWriteDeadline(d); err != nil {
				return 0, err
			}
			c.writeDeadline = d
		}
	}
	return c.Conn.Write(p)
}

// Deadlines are managed per operation above; fasthttp's own calls would
// otherwise reinstate a whole-exchange deadline.
func (c *upstreamConn) SetDeadline(time.Time) error      { return nil }
func (c *upstreamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *upstreamConn) SetWriteDeadline(time.Time) error { return nil }

// socket is the connection whose socket alive probes.
func (c *upstreamConn) socket() net.Conn {
	if c.raw != nil {
		return c.raw
	}
	return c.Conn
}

// dialer connects to addr, and with TLS settings completes the handshake
// within the same connect timeout, so a TLS failure (unknown authority,
// name mismatch, expired certificate, refused client certificate) is a
// connect error that names it. Each new connection uses the TLS files as
// they are now (tlsconf.ClientSource), so rotated certificates need no
// reload. A pooled TLS connection is probed on its socket: any byte
// waiting there after a response (a close_notify alert) or an EOF means the
// origin closed it.
func dialer(addr string, connectTimeout, ioTimeout time.Duration, t tlsconf.ClientConfig) func(string) (net.Conn, error) {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	src := tlsconf.NewClientSource(t)
	return func(string) (net.Conn, error) {
		cfg, err := src.Config()
		if err != nil {
			// Validated at load; the files went bad since.
			return nil, &dialError{err: fmt.Errorf("origin TLS settings: %w", err)}
		}
		cfg = tlsconf.ForAddr(cfg, addr)
		start := time.Now()
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, &dialError{err: err}
		}
		uc := &upstreamConn{Conn: conn, raw: conn, timeout: ioTimeout, probeAfter: probeAfterIdle}
		if cfg == nil {
			return uc, nil
		}
		tc := tls.Client(conn, cfg)
		_ = conn.SetDeadline(start.Add(connectTimeout))
		if err := tc.Handshake(); err != nil {
			_ = conn.Close()
			return nil, &dialError{err: err, handshake: true}
		}
		_ = conn.SetDeadline(time.Time{})
		uc.Conn = tc
		return uc, nil
	}
}

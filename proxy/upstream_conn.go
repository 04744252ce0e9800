package proxy

import (
	"errors"
	"net"
	"time"
)

// errStaleConn means a pooled connection was found closed by the origin
// before any byte of the request was written, so the request can be sent
// again on another connection whatever its method.
var errStaleConn = errors.New("pooled origin connection was closed by the origin while idle")

// dialError marks failures to establish a connection, so they map to
// origin_connect_error rather than reset or timeout.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connecting to origin: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// upstreamConn applies the route's response timeout to every read and write
// rather than as one deadline for the whole exchange. fasthttp sets a single
// deadline per request, which would cut a long download or an event stream
// that is still moving; per-operation deadlines cut only a stalled one.
// It also probes a reused connection before its first write (see alive).
type upstreamConn struct {
	net.Conn
	timeout time.Duration
	// readSinceWrite is set once a response byte arrived; the next write
	// starts a new request on a reused connection, which is when a
	// connection the origin closed while idle must be detected.
	readSinceWrite bool
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if c.timeout > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.readSinceWrite = true
	}
	return n, err
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	if c.readSinceWrite {
		c.readSinceWrite = false
		if !alive(c.Conn) {
			return 0, errStaleConn
		}
	}
	if c.timeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// Deadlines are managed per operation above; fasthttp's own calls would
// otherwise reinstate a whole-exchange deadline.
func (c *upstreamConn) SetDeadline(time.Time) error      { return nil }
func (c *upstreamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *upstreamConn) SetWriteDeadline(time.Time) error { return nil }

func dialer(addr string, connectTimeout, ioTimeout time.Duration) func(string) (net.Conn, error) {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return func(string) (net.Conn, error) {
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, &dialError{err: err}
		}
		return &upstreamConn{Conn: conn, timeout: ioTimeout}, nil
	}
}

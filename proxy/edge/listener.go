package edge

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/internal/deadline"
)

// Accept back-off bounds: the first retry after a resource error waits
// minAcceptBackoff, each further one twice as long up to maxAcceptBackoff.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// ListenerOptions tune Listen.
type ListenerOptions struct {
	// WriteProgressTimeout cuts a client whose connection accepts no
	// response bytes for this long (0: never). It bounds each write, not
	// the response: a long download or an event stream that keeps moving,
	// however slowly, is never cut.
	WriteProgressTimeout time.Duration
	// OnAcceptError observes a resource error accept() failed with (too
	// many open files, out of buffers) and how long the listener waits
	// before retrying. It must not block.
	OnAcceptError func(err error, retryIn time.Duration)

	// TLS, when set, makes every accepted connection a *TLSConn using it
	// (see tlsconf.Store.TLSConfig).
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake (0: none).
	HandshakeTimeout time.Duration
	// OnHandshakeError observes a failed TLS handshake. It must not block.
	OnHandshakeError func(err error)
	// PlainHTTPAnswer is written, in plain text, to a client that sent an
	// HTTP request to the TLS listener.
	PlainHTTPAnswer []byte

	// Server, when set, is the fasthttp server this listener feeds, and
	// turns on idle parking (idle.go): a keep-alive connection that waits
	// longer than ParkIdleAfter (0: DefaultParkIdleAfter) for its next
	// request leaves fasthttp, holding no buffer, until that request
	// comes. The server's ConnState hook must call NoteConnState.
	Server        *fasthttp.Server
	ParkIdleAfter time.Duration
}

// Listener wraps the client listener. Accept survives resource exhaustion
// (EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED): instead of returning the
// error, which makes fasthttp's Serve, and with it the gateway, exit, it
// reports the error, backs off and retries, while connections already
// accepted keep being served. Accepted connections are *Conn, or *TLSConn
// when ListenerOptions.TLS is set.
type Listener struct {
	net.Listener
	opts    ListenerOptions
	retries atomic.Int64
	closed  atomic.Bool
	wake    chan struct{}
	// parking is nil unless ListenerOptions.Server is set.
	parking *parking
}

// Listen wraps ln.
func Listen(ln net.Listener, opts ListenerOptions) *Listener {
	l := &Listener{Listener: ln, opts: opts, wake: make(chan struct{})}
	if opts.Server != nil {
		l.parking = newParking(opts.Server, opts.ParkIdleAfter)
	}
	return l
}

// AcceptRetries is how many times accept failed with a resource error and
// was retried.
func (l *Listener) AcceptRetries() int64 { return l.retries.Load() }

// Accept returns the next connection, retrying through resource errors.
func (l *Listener) Accept() (net.Conn, error) {
	delay := time.Duration(0)
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if l.opts.TLS != nil {
				return newTLSConn(c, l.opts.TLS, &l.opts, l.parking), nil
			}
			return newConn(c, l.opts.WriteProgressTimeout, l.parking), nil
		}
		if l.closed.Load() || !isResourceError(err) {
			return nil, err
		}
		if delay == 0 {
			delay = minAcceptBackoff
		} else {
			delay = min(2*delay, maxAcceptBackoff)
		}
		l.retries.Add(1)
		if l.opts.OnAcceptError != nil {
			l.opts.OnAcceptError(err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.wake:
			t.Stop()
		}
	}
}

// Close closes the listener and ends a back-off in progress. Parked idle
// connections are closed too, as fasthttp closes its idle ones at
// shutdown.
func (l *Listener) Close() error {
	if l.closed.CompareAndSwap(false, true) {
		close(l.wake)
	}
	if l.parking != nil {
		l.parking.close()
	}
	return l.Listener.Close()
}

// isResourceError reports accept errors that say the process or system is
// short of something (file descriptors, buffers, memory) or that one
// pending connection went away; the listener itself is fine.
func isResourceError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Conn is an accepted client connection. It counts the bytes read (so the
// gateway can bound chunked-body framing against the data it carries) and
// applies the write progress timeout.
type Conn struct {
	net.Conn
	read atomic.Int64
	// readLimit, when positive, is the byte count past which reads fail
	// with ErrReadLimit.
	readLimit atomic.Int64
	progress  time.Duration
	// deadline is the write deadline fasthttp asked for (its
	// write_timeout), which a progress deadline never extends.
	deadline time.Time
	// armed is the write deadline currently set on the socket.
	armed time.Time
	// peer is the TCP peer's address, read once: every request's trust
	// decision starts from it, and converting net.Addr per request cost
	// about 3 % of the gateway's CPU in a profile.
	peer netip.Addr

	// Idle parking (idle.go); parking is nil when it is off. outer is
	// what fasthttp serves: this Conn, or the *TLSConn over it.
	parking *parking
	outer   net.Conn
	// idle is set between fasthttp's StateIdle and StateActive (the
	// serving goroutine's own state, so not atomic); idleUntil is the
	// idle deadline fasthttp set, parkArmed that the wait was cut short
	// to park, parkOnClose that fasthttp's next Close parks.
	idle        bool
	parkArmed   bool
	hasFirst    bool
	first       [1]byte
	idleUntil   time.Time
	parkOnClose atomic.Bool
}

func newConn(c net.Conn, progress time.Duration, p *parking) *Conn {
	conn := &Conn{Conn: c, progress: progress, parking: p}
	conn.outer = conn
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		conn.peer = a.AddrPort().Addr().Unmap()
	}
	return conn
}

// PeerAddr is the TCP peer's address (IPv4-mapped addresses unmapped); the
// zero Addr for a connection that is not TCP.
func (c *Conn) PeerAddr() netip.Addr { return c.peer }

// BytesRead is the number of bytes read from the client so far.
func (c *Conn) BytesRead() int64 { return c.read.Load() }

// ErrReadLimit is the read error once a connection's read limit is reached.
var ErrReadLimit = errors.New("edge: connection read limit reached")

// SetReadLimit makes reads fail with ErrReadLimit once BytesRead reaches
// limit; 0 removes the limit. The gateway bounds a chunked body's wire
// size with it: fasthttp skips chunk extensions inside one body read, so
// only the connection can stop an endless one.
func (c *Conn) SetReadLimit(limit int64) { c.readLimit.Store(limit) }

func (c *Conn) Read(p []byte) (int, error) {
	if c.idle || c.hasFirst {
		return c.readIdle(p)
	}
	return c.read1(p)
}

// read1 is one read of the connection, counted and under the read limit.
func (c *Conn) read1(p []byte) (int, error) {
	if lim := c.readLimit.Load(); lim > 0 {
		left := lim - c.read.Load()
		if left <= 0 {
			return 0, ErrReadLimit
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// progressSlice is the most written under one progress deadline, so a
// client reading steadily but slowly renews it.
const progressSlice = 64 << 10

func (c *Conn) Write(p []byte) (int, error) {
	if c.progress <= 0 {
		return c.Conn.Write(p)
	}
	written := 0
	for len(p) > 0 {
		if err := c.armProgress(time.Now()); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[:min(len(p), progressSlice)])
		written += n
		p = p[n:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// armProgress makes sure a write starting at now is cut if it makes no
// progress for the progress timeout (between 1x and 1.25x of it, see
// package deadline), never later than fasthttp's own write deadline.
func (c *Conn) armProgress(now time.Time) error {
	d, ok := deadline.Due(now, c.armed, c.progress, c.deadline)
	if !ok {
		return nil
	}
	c.armed = d
	return c.Conn.SetWriteDeadline(d)
}

// SetReadDeadline applies t; while the connection waits for its next
// request, t is the idle deadline and the wait may end earlier to park.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.idle {
		t = c.idleDeadline(t)
	}
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline records fasthttp's own deadline (write_timeout, set on
// every request). With a progress timeout every Write arms the socket
// itself, never later than this deadline (armProgress), so the socket is
// left alone here: a timer change per request showed in profiles. Callers
// set a write deadline before writing on the same goroutine, never to
// interrupt a Write blocked elsewhere.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.deadline = t
	if c.progress > 0 {
		return nil
	}
	c.armed = t
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline records the write half of t and applies it.
func (c *Conn) SetDeadline(t time.Time) error {
	c.deadline, c.armed = t, t
	return c.Conn.SetDeadline(t)
}

// SetKeepAlive and SetKeepAlivePeriod pass TCP keep-alive settings through
// (fasthttp configures them on accepted connections that offer them).
func (c *Conn) SetKeepAlive(on bool) error {
	if tc := tcpConn(c.Conn); tc != nil {
		return tc.SetKeepAlive(on)
	}
	return nil
}

func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	if tc := tcpConn(c.Conn); tc != nil {
		return tc.SetKeepAlivePeriod(d)
	}
	return nil
}

// CloseWrite half-closes the connection (a TLS connection sends its
// close_notify first), for tunnels that relay one side's end of stream to
// the other while the reverse direction keeps flowing.
func (c *Conn) CloseWrite() error {
	for inner := c.Conn; ; {
		switch v := inner.(type) {
		case interface{ CloseWrite() error }:
			return v.CloseWrite()
		case interface{ NetConn() net.Conn }:
			inner = v.NetConn()
		default:
			return errors.ErrUnsupported
		}
	}
}

// tcpConn finds the TCP connection under wrappers that expose it with
// NetConn (as crypto/tls does).
func tcpConn(c net.Conn) *net.TCPConn {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

package edge

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// DefaultParkIdleAfter is how long a keep-alive connection waits for its
// next request inside fasthttp before it is parked. A connection that keeps
// sending requests faster than this never parks, so the busy path is
// unchanged; one that waits longer pays a goroutine start and one 1-byte
// read when its next request comes.
const DefaultParkIdleAfter = 100 * time.Millisecond

// Why parking exists: with StreamRequestBody, fasthttp keeps a keep-alive
// connection's read buffer (server.max_header_size, 16 KiB by default) and
// its request context (about 2 KiB with header storage) for as long as the
// connection is open, on a worker goroutine whose stack grew while serving
// (8 KiB): about 18 KiB per idle connection. Without StreamRequestBody and
// with ReduceMemoryUsage it releases both while waiting, but request bodies
// must stream. So the edge takes an idle connection out of fasthttp
// instead: the wait for its next request times out after ParkIdleAfter,
// fasthttp ends the connection's serve loop (releasing buffer, context and
// worker), and the Close that follows parks the connection rather than
// closing it. A small goroutine then waits for the next request's first
// byte, under the idle deadline fasthttp had set, and gives the connection
// back to fasthttp with ServeConn, that byte read first. What a parked
// connection holds is the socket, this package's Conn and the waiting
// goroutine's stack (see docs/PERFORMANCE.md for the measured floor).

// parking holds the parked connections of one listener.
type parking struct {
	after time.Duration
	srv   *fasthttp.Server

	count atomic.Int64
	mu    sync.Mutex
	conns map[*Conn]struct{}
	shut  bool
}

func newParking(srv *fasthttp.Server, after time.Duration) *parking {
	if after <= 0 {
		after = DefaultParkIdleAfter
	}
	return &parking{after: after, srv: srv, conns: map[*Conn]struct{}{}}
}

// park takes c out of fasthttp; false when the listener is closed (the
// caller then closes c).
func (p *parking) park(c *Conn) bool {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return false
	}
	p.conns[c] = struct{}{}
	p.count.Add(1)
	p.mu.Unlock()
	c.idle, c.parkArmed = false, false
	go p.wait(c)
	return true
}

// wait blocks until c's next request starts, then serves c with fasthttp
// on this goroutine; it closes c when the idle deadline passes, the
// client goes away or the listener closes first.
func (p *parking) wait(c *Conn) {
	var n int
	err := c.Conn.SetReadDeadline(c.idleUntil)
	if err == nil {
		n, err = c.Conn.Read(c.first[:])
	}
	p.mu.Lock()
	delete(p.conns, c)
	p.count.Add(-1)
	shut := p.shut
	p.mu.Unlock()
	if n == 0 || err != nil || shut {
		_ = c.Conn.Close()
		return
	}
	c.read.Add(1)
	c.hasFirst = true
	// fasthttp arms the first-byte (read_header_timeout) deadline itself;
	// without one configured the idle deadline must not cut the request.
	_ = c.Conn.SetReadDeadline(time.Time{})
	if h := p.srv.ConnState; h != nil {
		// To the hook the connection opens again: it reported it closed
		// when fasthttp let go of it.
		h(c.outer, fasthttp.StateNew)
	}
	_ = p.srv.ServeConn(c.outer)
}

// close closes every parked connection; later parks fail.
func (p *parking) close() {
	p.mu.Lock()
	p.shut = true
	list := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		list = append(list, c)
	}
	p.mu.Unlock()
	for _, c := range list {
		_ = c.Conn.Close()
	}
}

// NoteConnState tells the edge where fasthttp is with a connection; the
// server's ConnState hook must call it for idle parking to work (a
// connection fasthttp wrapped, for max_connections_per_ip, is not
// recognised and never parks).
func NoteConnState(c net.Conn, st fasthttp.ConnState) {
	ec := ConnOf(c)
	if ec == nil || ec.parking == nil {
		return
	}
	switch st {
	case fasthttp.StateIdle:
		ec.idle = true
	case fasthttp.StateActive:
		ec.idle = false
		ec.parkArmed = false
	}
}

// idleDeadline is SetReadDeadline while the connection waits for its next
// request: fasthttp's idle deadline t is remembered and the wait is cut
// at ParkIdleAfter if that comes first.
func (c *Conn) idleDeadline(t time.Time) time.Time {
	c.idleUntil = t
	c.parkArmed = false
	if t.IsZero() {
		return t
	}
	if at := time.Now().Add(c.parking.after); at.Before(t) {
		c.parkArmed = true
		return at
	}
	return t
}

// readIdle is Read while the connection waits for its next request (or
// has just been given back to fasthttp with the first byte read).
func (c *Conn) readIdle(p []byte) (int, error) {
	if c.hasFirst {
		c.hasFirst = false
		if len(p) == 0 {
			return 0, nil
		}
		p[0] = c.first[0]
		return 1, nil
	}
	n, err := c.read1(p)
	if n == 0 && c.parkArmed && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(c.idleUntil) {
		// fasthttp treats the timeout as the end of an idle keep-alive
		// connection and closes it: that Close parks it instead.
		c.parkOnClose.Store(true)
	}
	c.parkArmed = false
	return n, err
}

// Close closes the connection, or parks it when fasthttp is closing it
// only because its wait for the next request reached ParkIdleAfter.
func (c *Conn) Close() error {
	if c.parkOnClose.CompareAndSwap(true, false) && c.parking.park(c) {
		return nil
	}
	return c.Conn.Close()
}

// ParkedConnections is how many idle keep-alive connections are parked
// (open, but out of fasthttp's count).
func (l *Listener) ParkedConnections() int64 {
	if l.parking == nil {
		return 0
	}
	return l.parking.count.Load()
}

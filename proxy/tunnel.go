package proxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A tunnel relays bytes both ways between a client whose WebSocket
// handshake the origin accepted (101) and that origin, over the client's
// hijacked connection and a connection dialled for this tunnel alone. It
// knows nothing of WebSocket framing: close frames, pings and pongs are
// bytes like any other, so either side's close handshake reaches the other
// as sent. It ends when
//   - both sides have closed their sending half (each end of stream is
//     passed on as a half-close, so a close handshake in progress finishes);
//   - either side resets or a write fails (the other is closed at once);
//   - no byte moved either way for the idle timeout, or the tunnel reached
//     its maximum lifetime;
//   - the server's drain timeout ends (tunnelSet.closeAll).
// It works on any net.Conn, so TLS client connections tunnel the same way.

// tunnelLimits bound one tunnel; they are fixed when it opens.
type tunnelLimits struct {
	idle        time.Duration
	maxLifetime time.Duration // 0: none
}

// Relay buffer sizes. An idle tunnel blocks in Read on a small buffer;
// a read that fills it borrows a large pooled one for as long as data keeps
// arriving, so 10,000 idle tunnels cost little while a busy one copies in
// large chunks.
const (
	idleReadSize = 512
	busyReadSize = 32 << 10
)

var busyBufPool = sync.Pool{New: func() any { b := make([]byte, busyReadSize); return &b }}

type tunnel struct {
	set     *tunnelSet
	route   string
	limits  tunnelLimits
	metrics tunnelMetrics
	logger  *slog.Logger

	origin net.Conn
	// pending are origin bytes read past the 101's header (an origin may
	// send its first message right behind it): the client gets them first.
	pending []byte

	mu      sync.Mutex
	client  net.Conn // the hijacked client connection; nil until run
	reason  string   // why it ended; the first reason wins
	aborted bool

	start    time.Time
	last     atomic.Int64 // unix nanoseconds of the last byte either way
	toOrigin atomic.Int64
	toClient atomic.Int64
}

// run relays until the tunnel ends and then closes both connections.
// client is the hijacked client connection (without fasthttp's wrapper),
// head the 101 for it, early the bytes the client sent right behind its
// handshake (for the origin), clientDone whether the client had already
// finished sending.
func (t *tunnel) run(client net.Conn, head, early []byte, clientDone bool) {
	t.mu.Lock()
	if t.aborted {
		// Closed by a drain while fasthttp was handing the connection over.
		t.mu.Unlock()
		_ = client.Close()
		return
	}
	t.client = client
	t.start = time.Now()
	t.last.Store(t.start.UnixNano())
	t.mu.Unlock()
	t.set.running.Add(1)
	t.metrics.Opened()
	defer func() {
		t.abort("")
		d := time.Since(t.start)
		t.set.running.Add(-1)
		t.metrics.Closed(d)
		t.set.remove(t)
		t.logger.Debug("tunnel closed", "route", t.route, "duration", d.String(), "reason", t.endReason(),
			"bytes_to_origin", t.toOrigin.Load(), "bytes_to_client", t.toClient.Load())
	}()

	_ = client.SetWriteDeadline(time.Now().Add(t.limits.idle))
	if _, err := client.Write(append(head, t.pending...)); err != nil {
		t.abort("client write failed: " + err.Error())
		return
	}
	t.count(false, len(t.pending))
	t.pending = nil

	done := make(chan struct{})
	go func() {
		defer close(done)
		t.pump(t.origin, client, false)
	}()
	if len(early) > 0 {
		_ = t.origin.SetWriteDeadline(time.Now().Add(t.limits.idle))
		if _, err := t.origin.Write(early); err != nil {
			t.abort("origin write failed: " + err.Error())
		}
		t.count(true, len(early))
	}
	switch {
	case t.isAborted():
	case clientDone:
		if closeWrite(t.origin) != nil {
			t.abort("client closed")
		}
	default:
		t.pump(client, t.origin, true)
	}
	<-done
}

// count records n bytes relayed.
func (t *tunnel) count(toOrigin bool, n int) {
	if n == 0 {
		return
	}
	if toOrigin {
		t.toOrigin.Add(int64(n))
	} else {
		t.toClient.Add(int64(n))
	}
	t.metrics.Bytes(toOrigin, n)
}

// pump copies src to dst until src ends or the tunnel does.
func (t *tunnel) pump(src, dst net.Conn, toOrigin bool) {
	small := make([]byte, idleReadSize)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			busyBufPool.Put(big)
		}
	}()
	var writeDeadline time.Time
	if err := src.SetReadDeadline(t.deadline()); err != nil {
		t.abort("arming the idle timeout: " + err.Error())
		return
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			t.last.Store(now.UnixNano())
			// A peer that stops reading is idle too: each write gets the
			// idle timeout, re-armed when half of it is used.
			if writeDeadline.Sub(now) < t.limits.idle/2 {
				writeDeadline = now.Add(t.limits.idle)
				_ = dst.SetWriteDeadline(writeDeadline)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				t.abort(t.side(!toOrigin) + " write failed: " + werr.Error())
				return
			}
			t.count(toOrigin, n)
			switch {
			case n == len(buf) && big == nil:
				big = busyBufPool.Get().(*[]byte)
				buf = *big
			case n < len(buf)/2 && big != nil:
				// Caught up: block in the next read on the small buffer.
				busyBufPool.Put(big)
				big, buf = nil, small
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && !t.isAborted():
			next := t.deadline()
			if !next.After(time.Now()) {
				t.abort(t.expiry())
				return
			}
			if err := src.SetReadDeadline(next); err != nil {
				t.abort("re-arming the idle timeout: " + err.Error())
				return
			}
		case errors.Is(err, io.EOF):
			// This side is done sending; the other may still answer (a
			// WebSocket close handshake), so pass the end on as a
			// half-close and keep the reverse direction open.
			if cerr := closeWrite(dst); cerr != nil {
				t.abort(t.side(toOrigin) + " closed")
			}
			return
		default:
			t.abort(t.side(toOrigin) + " read failed: " + err.Error())
			return
		}
	}
}

// deadline is when the tunnel expires if no byte moves: the idle timeout
// after the last byte, or the end of its lifetime if sooner.
func (t *tunnel) deadline() time.Time {
	d := time.Unix(0, t.last.Load()).Add(t.limits.idle)
	if t.limits.maxLifetime > 0 {
		if end := t.start.Add(t.limits.maxLifetime); end.Before(d) {
			return end
		}
	}
	return d
}

func (t *tunnel) expiry() string {
	if t.limits.maxLifetime > 0 && !time.Now().Before(t.start.Add(t.limits.maxLifetime)) {
		return "max lifetime reached (server.tunnel.max_lifetime " + t.limits.maxLifetime.String() + ")"
	}
	return "idle timeout (server.tunnel.idle_timeout " + t.limits.idle.String() + ")"
}

func (t *tunnel) side(origin bool) string {
	if origin {
		return "client"
	}
	return "origin"
}

// abort ends the tunnel: both connections are closed, which ends both
// pumps. The first reason given is the one logged; "" only closes.
func (t *tunnel) abort(reason string) {
	t.mu.Lock()
	if t.reason == "" {
		t.reason = reason
	}
	first := !t.aborted
	t.aborted = true
	client := t.client
	t.mu.Unlock()
	if !first {
		return
	}
	_ = t.origin.Close()
	if client != nil {
		_ = client.Close()
	}
	if client == nil {
		// Never ran (a drain closed it before fasthttp handed over the
		// client): nothing else will take it out of the set.
		t.set.remove(t)
	}
}

func (t *tunnel) isAborted() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.aborted
}

func (t *tunnel) endReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reason == "" {
		return "both sides closed"
	}
	return t.reason
}

// closeWrite half-closes c (TCP FIN, or a TLS close_notify), looking
// through wrappers that expose the connection they wrap.
func closeWrite(c net.Conn) error {
	for {
		switch v := c.(type) {
		case interface{ CloseWrite() error }:
			return v.CloseWrite()
		case interface{ UnsafeConn() net.Conn }:
			c = v.UnsafeConn()
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return errors.ErrUnsupported
		}
	}
}

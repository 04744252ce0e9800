package proxy

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

// CategoryConnectionLimit is the status category of a connection refused
// because server.max_connections client connections were already open.
// It is never a request's category (the connection carried none); it
// names the refusal on the wire and in the log.
const CategoryConnectionLimit filters.Category = "connection_limit"

// refusalResponse is written to a connection over the cap before it is
// closed. fasthttp's own refusal carries no status category, so the cap is
// enforced here, before fasthttp sees the connection.
var refusalResponse = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Connection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\n" +
	filters.StatusHeader + ": " + string(CategoryConnectionLimit) + "\r\n" +
	"Content-Length: 52\r\n" +
	"\r\n" +
	"too many open connections (server.max_connections)\n\n")

// refusalLogEvery bounds how often refusals are logged: under a connection
// flood one line per second (with the count since the last) says enough.
const refusalLogEvery = time.Second

// connListener caps open client connections and remembers them, so a
// drain that reaches its timeout can close the ones still open.
type connListener struct {
	net.Listener
	max    int64
	logger *slog.Logger
	// silentRefusal closes a refused connection without the plain-text
	// 503 (a TLS listener's clients cannot read it).
	silentRefusal bool

	open    atomic.Int64
	refused atomic.Uint64

	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	lastLog time.Time
	unshown uint64
}

func newConnListener(ln net.Listener, max int, logger *slog.Logger) *connListener {
	return &connListener{Listener: ln, max: int64(max), logger: logger, conns: map[*trackedConn]struct{}{}}
}

// Accept returns the next connection under the cap; those over it are
// answered 503 and closed here.
func (l *connListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refuse(c)
			continue
		}
		tc := &trackedConn{Conn: c, l: l}
		l.mu.Lock()
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

func (l *connListener) refuse(c net.Conn) {
	// Counted and logged before the answer goes out, so whoever reads the
	// 503 finds the refusal already accounted for.
	l.refused.Add(1)
	l.logRefusal(c.RemoteAddr())
	if !l.silentRefusal {
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(refusalResponse)
	}
	_ = c.Close()
}

// logRefusal logs at most once per refusalLogEvery, with the count of
// refusals since the last line.
func (l *connListener) logRefusal(remote net.Addr) {
	l.mu.Lock()
	l.unshown++
	now := time.Now()
	if now.Sub(l.lastLog) < refusalLogEvery {
		l.mu.Unlock()
		return
	}
	n := l.unshown
	l.lastLog, l.unshown = now, 0
	l.mu.Unlock()
	l.logger.Warn("connection refused: server.max_connections reached",
		"category", string(CategoryConnectionLimit), "max_connections", l.max,
		"refused_since_last_log", n, "remote", remote.String())
}

// closeAll closes every connection still open.
func (l *connListener) closeAll() int {
	l.mu.Lock()
	list := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		list = append(list, c)
	}
	l.mu.Unlock()
	for _, c := range list {
		_ = c.Close()
	}
	return len(list)
}

// trackedConn leaves its listener's count and set when closed.
type trackedConn struct {
	net.Conn
	l    *connListener
	once sync.Once
}

// NetConn returns the wrapped connection (TCP keep-alive settings reach
// it through this).
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return err
}

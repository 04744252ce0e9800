package fuzz

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// strictOrigin parses what the gateway sends with Go's net/http parser and
// records every request by its marker; anything it cannot parse is a
// malformed upstream message. It also keeps the raw bytes of every
// connection, so a finding can show exactly what the gateway wrote, and
// it can tell when it has consumed everything the gateway sent (idle), so
// the harness charges each request to the input that caused it rather
// than to whichever input happens to run when it arrives.
type strictOrigin struct {
	ln     net.Listener
	wg     sync.WaitGroup
	nextID atomic.Int64

	mu    sync.Mutex
	conns map[*originConn]bool // open connections
	// findings since the last reset (the current input).
	seen      map[string]int
	unmarked  []string
	malformed []string
	// touched are the connections that received bytes since the last
	// reset, with the offset their bytes for this input start at.
	touched map[*originConn]int
}

// originConn records what the origin reads and whether its goroutine is
// parked in Read (waiting for the gateway), which is where an idle origin
// connection sits.
type originConn struct {
	net.Conn
	id      int64
	waiting atomic.Bool
	// recorded counts the bytes Read has returned and recorded; it is
	// raised only after waiting is cleared (see drained).
	recorded atomic.Int64
	o        *strictOrigin
	mu       sync.Mutex
	raw      []byte
}

func (c *originConn) Read(p []byte) (int, error) {
	c.waiting.Store(true)
	n, err := c.Conn.Read(p)
	c.waiting.Store(false)
	if n > 0 {
		c.mu.Lock()
		start := len(c.raw)
		c.raw = append(c.raw, p[:n]...)
		c.mu.Unlock()
		c.o.mu.Lock()
		if _, ok := c.o.touched[c]; !ok {
			c.o.touched[c] = start
		}
		c.o.mu.Unlock()
		c.recorded.Add(int64(n))
	}
	return n, err
}

// drained reports whether everything the kernel received on c has been
// read, recorded and processed, the goroutine being back in Read.
// recorded is loaded before the kernel's count and waiting after it: when
// the counts match, every received byte was recorded, which happened after
// its Read cleared waiting, so a set waiting means a later Read: the serve
// loop is done with those bytes. (Checking "in Read with nothing unread"
// instead races with a Read that has returned data but not yet cleared
// waiting.)
func (c *originConn) drained() bool {
	r := c.recorded.Load()
	k, ok := receivedBytes(c.Conn)
	w := c.waiting.Load()
	return w && (!ok || k == r)
}

func startStrictOrigin(tb testing.TB) *strictOrigin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o := &strictOrigin{ln: ln, conns: map[*originConn]bool{}, seen: map[string]int{}, touched: map[*originConn]int{}}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := &originConn{Conn: nc, id: o.nextID.Add(1), o: o}
			// Registered before its goroutine runs, so idle waits for it
			// to reach its first Read.
			o.mu.Lock()
			o.conns[c] = true
			o.mu.Unlock()
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer func() {
					o.mu.Lock()
					delete(o.conns, c)
					o.mu.Unlock()
				}()
				defer c.Close()
				o.serve(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		o.mu.Lock()
		for c := range o.conns {
			c.Close()
		}
		o.mu.Unlock()
		o.wg.Wait()
	})
	return o
}

func (o *strictOrigin) serve(c *originConn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if err != io.EOF && !isClosed(err) {
				o.mu.Lock()
				o.malformed = append(o.malformed, fmt.Sprintf("conn %d: %v", c.id, err))
				o.mu.Unlock()
			}
			return
		}
		_, bodyErr := io.Copy(io.Discard, req.Body)
		o.mu.Lock()
		if m := req.Header.Get(markerHeader); m != "" {
			o.seen[m]++
		} else {
			o.unmarked = append(o.unmarked, fmt.Sprintf("conn %d: %s %s", c.id, req.Method, req.RequestURI))
		}
		o.mu.Unlock()
		if bodyErr != nil {
			return // the gateway gave up on the body (client error): fine
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

func isClosed(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection") || strings.Contains(err.Error(), "connection reset")
}

// idle reports whether the origin has consumed and recorded every byte the
// gateway sent: no connection waits in the accept queue, and every
// connection is drained. Once the gateway itself is idle this state is
// stable.
//
// A connection the accept loop has taken from the kernel but not yet
// registered is invisible for that instant; behind the gateway it does not
// matter, since the gateway is idle only once each request it wrote got
// its answer (so its connection was accepted) or timed out a second later.
func (o *strictOrigin) idle() bool {
	if n, ok := acceptQueueLen(o.ln); ok && n > 0 {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := range o.conns {
		if !c.drained() {
			return false
		}
	}
	return true
}

// waitIdle waits until both the gateway (gatewayIdle) and then the origin
// are idle, so everything the current input caused has been recorded.
func (o *strictOrigin) waitIdle(t *testing.T, gatewayIdle func() bool) {
	deadline := time.Now().Add(5 * time.Second)
	for pause := time.Microsecond; !gatewayIdle() || !o.idle(); pause = min(2*pause, time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway and origin not idle 5s after the input (gateway idle: %v)", gatewayIdle())
		}
		time.Sleep(pause) // polling the condition, not a fixed delay
	}
}

// reset starts a new input: findings and touched connections are per input.
func (o *strictOrigin) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.seen)
	o.unmarked, o.malformed = nil, nil
	clear(o.touched)
}

// check fails on any invariant the origin has seen broken during the
// current input.
func (o *strictOrigin) check(t *testing.T) {
	t.Helper()
	if err := o.findings(); err != nil {
		t.Fatal(err)
	}
}

// findings describes every invariant broken during the current input, with
// the raw bytes each connection received for it; nil if none.
func (o *strictOrigin) findings() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var problem string
	switch {
	case len(o.unmarked) > 0:
		problem = fmt.Sprintf("a request reached the origin that the client never sent as one (smuggled): %q", o.unmarked)
	case len(o.malformed) > 0:
		problem = fmt.Sprintf("the gateway sent the origin a message a strict parser refuses: %q", o.malformed)
	default:
		for m, n := range o.seen {
			if n > 1 {
				problem = fmt.Sprintf("request %s reached the origin %d times", m, n)
				break
			}
		}
	}
	if problem == "" {
		return nil
	}
	var raw strings.Builder
	for c, start := range o.touched {
		c.mu.Lock()
		fmt.Fprintf(&raw, "\n  conn %d received (from offset %d): %q", c.id, start, c.raw[start:])
		c.mu.Unlock()
	}
	return fmt.Errorf("%s%s", problem, raw.String())
}

package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/tlsconf"
)

// pair returns both ends of a real loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestAliveDetectsPeerClose(t *testing.T) {
	c, s := pair(t)
	if !alive(c) {
		t.Fatal("an open idle connection must be alive")
	}
	s.Close()
	// The FIN arrives asynchronously; wait until a blocking read sees it,
	// then the non-blocking peek must agree.
	probe, _ := pair(t)
	_ = probe
	buf := make([]byte, 1)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("want EOF after peer close, got %v", err)
	}
	if alive(c) {
		t.Fatal("a connection closed by the peer must not be alive")
	}
}

func TestAliveRejectsUnsolicitedBytes(t *testing.T) {
	c, s := pair(t)
	if _, err := s.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for alive(c) {
		if time.Now().After(deadline) {
			t.Fatal("bytes nobody asked for must mark the connection unusable")
		}
		time.Sleep(time.Millisecond) // polling a kernel buffer; no event to await
	}
}

// exchangeOnce sends one request and its answer over uc and s.
func exchangeOnce(t *testing.T, uc *upstreamConn, s net.Conn) {
	t.Helper()
	if _, err := uc.Write([]byte("req1")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	io.ReadFull(s, buf)
	s.Write([]byte("resp"))
	if _, err := io.ReadFull(uc, buf); err != nil {
		t.Fatal(err)
	}
}

// closeAndAwaitEOF closes the server end and waits until the client socket
// has the FIN, which is when a stale pooled connection is detectable.
func closeAndAwaitEOF(t *testing.T, c, s net.Conn) {
	t.Helper()
	s.Close()
	raw := make([]byte, 1)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(raw); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestUpstreamConnSkipsProbeWhenReusedWithinIdleBound(t *testing.T) {
	c, s := pair(t)
	// A connection reused before the bound is written without a probe:
	// the write itself succeeds even though the peer is gone, which is
	// what a probe would have caught (and what costs no syscall).
	uc := &upstreamConn{Conn: c, timeout: time.Second, probeAfter: time.Hour}
	exchangeOnce(t, uc, s)
	closeAndAwaitEOF(t, c, s)
	if n, err := uc.Write([]byte("req2")); n != 4 || err != nil {
		t.Fatalf("reuse within the idle bound: n=%d err=%v, want a plain write", n, err)
	}
}

func TestUpstreamConnProbesBeforeReuseAfterIdleBound(t *testing.T) {
	c, s := pair(t)
	uc := &upstreamConn{Conn: c, timeout: time.Second, probeAfter: 0}
	exchangeOnce(t, uc, s)
	closeAndAwaitEOF(t, c, s)
	n, err := uc.Write([]byte("req2"))
	if n != 0 || !errors.Is(err, errStaleConn) {
		t.Fatalf("reuse of a closed pooled connection: n=%d err=%v, want errStaleConn with nothing written", n, err)
	}
}

func TestUpstreamConnReadTimeoutIsPerRead(t *testing.T) {
	c, s := pair(t)
	uc := &upstreamConn{Conn: c, timeout: 150 * time.Millisecond}
	// The whole-exchange deadline fasthttp would set is ignored.
	_ = uc.SetReadDeadline(time.Now().Add(-time.Second))
	go func() {
		for i := 0; i < 4; i++ {
			time.Sleep(60 * time.Millisecond) // a slow but moving stream
			if _, err := s.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 1)
	for i := 0; i < 4; i++ {
		if _, err := uc.Read(buf); err != nil {
			t.Fatalf("read %d of a moving stream failed: %v", i, err)
		}
	}
	_, err := uc.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled stream must time out, got %v", err)
	}
}

func TestDialErrorIsTyped(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := dialer(addr, time.Second, time.Second, tlsconf.ClientConfig{})("")
	var de *dialError
	if !errors.As(err, &de) {
		t.Fatalf("want *dialError, got %T %v", err, err)
	}
	if status, cat := classifyOriginError(err); status != 502 || cat != "origin_connect_error" {
		t.Fatalf("classified as %d %s", status, cat)
	}
}

// deadlineCounter counts the deadlines set on it; reads and writes succeed.
type deadlineCounter struct {
	net.Conn
	reads, writes int
}

func (d *deadlineCounter) SetReadDeadline(time.Time) error  { d.reads++; return nil }
func (d *deadlineCounter) SetWriteDeadline(time.Time) error { d.writes++; return nil }
func (d *deadlineCounter) Read(p []byte) (int, error)       { return len(p), nil }
func (d *deadlineCounter) Write(p []byte) (int, error)      { return len(p), nil }

func TestDeadlineReArmedOnlyWhenDue(t *testing.T) {
	under := &deadlineCounter{}
	c := &upstreamConn{Conn: under, timeout: 8 * time.Second, probeAfter: time.Hour}
	buf := make([]byte, 1)
	for range 5 {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	// The rule itself (when a deadline is due) is package deadline's;
	// here: five exchanges well within the timeout arm each deadline once.
	if under.reads != 1 || under.writes != 1 {
		t.Fatalf("deadlines set: %d read, %d write for 5 exchanges; want 1 each", under.reads, under.writes)
	}
}

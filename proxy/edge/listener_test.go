package edge

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails Accept with err n times, then accepts from the real
// listener.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	n    int
	errv error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.n > 0 {
		f.n--
		f.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", f.errv)}
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func TestAcceptSurvivesFileDescriptorExhaustion(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var delays []time.Duration
	ln := Listen(&flakyListener{Listener: inner, n: 4, errv: syscall.EMFILE}, ListenerOptions{
		OnAcceptError: func(err error, d time.Duration) {
			if !errors.Is(err, syscall.EMFILE) {
				t.Errorf("reported %v", err)
			}
			delays = append(delays, d)
		},
	})
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err == nil {
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept gave up: %v", err)
	}
	c.Close()
	if _, ok := c.(*Conn); !ok {
		t.Errorf("accepted %T, want *Conn", c)
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	if len(delays) != len(want) {
		t.Fatalf("back-off %v, want %v", delays, want)
	}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("back-off %v, want %v", delays, want)
		}
	}
	if ln.AcceptRetries() != 4 {
		t.Errorf("AcceptRetries = %d", ln.AcceptRetries())
	}
}

func TestAcceptReturnsOtherErrorsAndStopsOnClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(&flakyListener{Listener: inner, n: 1, errv: syscall.EINVAL}, ListenerOptions{})
	if _, err := ln.Accept(); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("a non-resource error must end Accept: %v", err)
	}
	// Close during a back-off ends Accept promptly.
	backingOff := make(chan struct{}, 1)
	ln2 := Listen(&flakyListener{Listener: inner, n: 1 << 30, errv: syscall.EMFILE}, ListenerOptions{
		OnAcceptError: func(error, time.Duration) {
			select {
			case backingOff <- struct{}{}:
			default:
			}
		},
	})
	done := make(chan error, 1)
	go func() { _, err := ln2.Accept(); done <- err }()
	<-backingOff
	ln2.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept returned a connection from a closed listener")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept kept retrying after Close")
	}
}

// A client that reads nothing is cut after the progress timeout; one that
// reads slowly but steadily is not.
func TestWriteProgressTimeout(t *testing.T) {
	ln, _, server := acceptedPair(t, ListenerOptions{WriteProgressTimeout: 200 * time.Millisecond})
	big := make([]byte, 64<<20) // far more than socket buffers hold
	start := time.Now()
	n, err := server.Write(big)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write to a client that never reads: n=%d err=%v, want a timeout", n, err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cut after %v", el)
	}

	// Steady reader: 4 MiB drained in small reads; every slice makes
	// progress, so the write completes although it takes longer than the
	// timeout in total.
	client2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client2.Close()
	server2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server2.Close()
	payload := make([]byte, 4<<20)
	read := make(chan int64, 1)
	go func() {
		var total int64
		buf := make([]byte, 32<<10)
		for total < int64(len(payload)) {
			n, err := client2.Read(buf)
			total += int64(n)
			if err != nil {
				break
			}
			time.Sleep(2 * time.Millisecond) // a slow reader, by design of the test
		}
		read <- total
	}()
	if _, err := server2.Write(payload); err != nil {
		t.Fatalf("steady slow reader cut: %v", err)
	}
	if got := <-read; got != int64(len(payload)) {
		t.Fatalf("read %d", got)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(client2, 0))
}

func TestReadLimit(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	c := newConn(b, 0, nil)
	defer c.Close()
	go func() { _, _ = a.Write(make([]byte, 100)) }()
	c.SetReadLimit(10)
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if n > 10 || err != nil {
		t.Fatalf("first read: %d %v", n, err)
	}
	for err == nil {
		_, err = c.Read(buf)
	}
	if !errors.Is(err, ErrReadLimit) || c.BytesRead() != 10 {
		t.Fatalf("err %v after %d bytes", err, c.BytesRead())
	}
	c.SetReadLimit(0)
	if n, err := c.Read(buf); err != nil || n == 0 {
		t.Fatalf("lifted limit: %d %v", n, err)
	}
}

// CloseWrite reaches the TCP connection under wrappers that expose it
// (NetConn), so a tunnel can pass one side's end of stream on while the
// other direction keeps flowing; a connection without one says so.
func TestConnCloseWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(netConnWrapper{accepted}, 0, nil)
	defer c.Close()
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	_ = peer.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer read %d, %v; want EOF", n, err)
	}
	if _, err := io.WriteString(peer, "still open"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 10)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "still open" {
		t.Fatalf("read after CloseWrite: %q %v", got, err)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := newConn(a, 0, nil).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite on a pipe: %v, want ErrUnsupported", err)
	}
}

// netConnWrapper hides the TCP connection's methods, exposing it only
// through NetConn, as the gateway's tracked connections do.
type netConnWrapper struct{ net.Conn }

func (w netConnWrapper) NetConn() net.Conn { return w.Conn }

// An accepted connection knows its peer's address from the start, as the
// request driver reads it; a connection that is not TCP has none.
func TestConnPeerAddr(t *testing.T) {
	_, client, server := acceptedPair(t, ListenerOptions{})
	want := client.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
	if got := ConnOf(server).PeerAddr(); got != want {
		t.Fatalf("PeerAddr %v, want the client's %v", got, want)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := newConn(b, 0, nil).PeerAddr(); got.IsValid() {
		t.Fatalf("pipe connection has peer %v", got)
	}
}

// acceptedPair opens an edge listener with opts on loopback and returns it
// with a dialled client and the server side as the listener accepted it;
// all three are closed when the test ends.
func acceptedPair(t *testing.T, opts ListenerOptions) (ln *Listener, client, server net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = Listen(inner, opts)
	t.Cleanup(func() { _ = ln.Close() })
	client, err = net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return ln, client, server
}

// deadlineRecorder records the write deadlines set on it.
type deadlineRecorder struct {
	net.Conn
	set []time.Time
}

func (r *deadlineRecorder) SetWriteDeadline(t time.Time) error { r.set = append(r.set, t); return nil }
func (r *deadlineRecorder) Write(p []byte) (int, error)        { return len(p), nil }

// fasthttp's write_timeout still cuts a write to a client that reads
// nothing, when it comes before the progress timeout: the deadline is
// recorded, and the write arms it.
func TestWriteDeadlineCutsBeforeProgressTimeout(t *testing.T) {
	_, _, server := acceptedPair(t, ListenerOptions{WriteProgressTimeout: time.Minute})
	if err := server.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := server.Write(make([]byte, 64<<20))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write to a client that never reads: n=%d err=%v, want a timeout", n, err)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("cut after %v, by the progress timeout rather than the write deadline", el)
	}
}

func TestProgressDeadlineReArmedOnlyWhenDue(t *testing.T) {
	rec := &deadlineRecorder{}
	c := &Conn{Conn: rec, progress: time.Second}
	now := time.Now()
	if err := c.armProgress(now); err != nil || len(rec.set) != 1 {
		t.Fatalf("first write: %d deadlines set, err %v", len(rec.set), err)
	}
	if d := rec.set[0].Sub(now); d < time.Second || d > 1250*time.Millisecond {
		t.Fatalf("armed %v ahead, want between the timeout and 1.25x", d)
	}
	// Writes soon after keep it: it is still at least the timeout away.
	for _, at := range []time.Duration{time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond} {
		_ = c.armProgress(now.Add(at))
	}
	if len(rec.set) != 1 {
		t.Fatalf("re-armed %d times within the slack", len(rec.set)-1)
	}
	// Later, it would cut a stall too soon: re-armed.
	_ = c.armProgress(now.Add(300 * time.Millisecond))
	if len(rec.set) != 2 {
		t.Fatalf("not re-armed once closer than the timeout: %d", len(rec.set))
	}
	// fasthttp's own earlier deadline wins, and is not extended.
	early := now.Add(2 * time.Second)
	before := len(rec.set)
	_ = c.SetWriteDeadline(early)
	if len(rec.set) != before {
		t.Fatal("fasthttp's write deadline reached the socket before a write needed it")
	}
	_ = c.armProgress(now.Add(1900 * time.Millisecond))
	if last := rec.set[len(rec.set)-1]; !last.Equal(early) {
		t.Fatalf("armed %v, want fasthttp's deadline %v", last, early)
	}
	// A far deadline of fasthttp's does not stand in for the progress one.
	_ = c.SetWriteDeadline(now.Add(time.Hour))
	n := len(rec.set)
	_ = c.armProgress(now.Add(3 * time.Second))
	if len(rec.set) != n+1 || rec.set[n].Sub(now.Add(3*time.Second)) > 1250*time.Millisecond {
		t.Fatalf("progress deadline not armed under a far write deadline: %v", rec.set[n:])
	}
}

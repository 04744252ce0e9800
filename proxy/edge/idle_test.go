package edge

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/internal/testpki"
)

// parkingServer is the edge server with idle parking on, as the gateway
// runs it: a handler answering "ok" (or the length of a streamed body on
// /count), and a ConnState hook counting the connections fasthttp holds.
type parkingServer struct {
	srv  *fasthttp.Server
	ln   *Listener
	addr string
	// open counts connections fasthttp holds (StateNew minus closed and
	// hijacked), as the gateway's connection gauge does.
	open atomic.Int64
}

func startParkingServer(t testing.TB, l Limits, tlsCfg *tls.Config) *parkingServer {
	return startParkingServerAfter(t, l, tlsCfg, 0)
}

func startParkingServerAfter(t testing.TB, l Limits, tlsCfg *tls.Config, parkAfter time.Duration) *parkingServer {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := &parkingServer{addr: inner.Addr().String()}
	ps.srv = NewServer(func(rc *fasthttp.RequestCtx) {
		if string(rc.Path()) == "/count" {
			n, err := io.Copy(io.Discard, rc.RequestBodyStream())
			if err != nil {
				rc.Error(err.Error(), fasthttp.StatusBadRequest)
				return
			}
			rc.SetBodyString(strconv.FormatInt(n, 10))
			return
		}
		rc.SetBodyString("ok")
	}, l)
	ps.srv.ConnState = func(c net.Conn, st fasthttp.ConnState) {
		NoteConnState(c, st)
		switch st {
		case fasthttp.StateNew:
			ps.open.Add(1)
		case fasthttp.StateClosed, fasthttp.StateHijacked:
			ps.open.Add(-1)
		}
	}
	ps.ln = Listen(inner, ListenerOptions{Server: ps.srv, TLS: tlsCfg, ParkIdleAfter: parkAfter})
	done := make(chan error, 1)
	go func() { done <- ps.srv.Serve(ps.ln) }()
	t.Cleanup(func() {
		_ = ps.srv.Shutdown()
		<-done
	})
	return ps
}

// waitParked waits until n connections are parked and fasthttp has let
// go of them (it reports a connection closed just after parking it).
func (ps *parkingServer) waitParked(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ps.ln.ParkedConnections() != n || ps.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d (fasthttp holds %d)", ps.ln.ParkedConnections(), n, ps.open.Load())
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling a counter, not timing the test
	}
}

// exchange writes req on c and reads one response.
func exchange(t testing.TB, c net.Conn, br *bufio.Reader, req string) (*http.Response, string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp, string(body)
}

const getRequest = "GET / HTTP/1.1\r\nHost: edge\r\n\r\n"

// Idle keep-alive connections leave fasthttp: once parked they hold no
// read buffer, request context or grown worker stack, which made an idle
// connection cost about 26 KiB of Go memory (16 KiB read buffer, about
// 2 KiB of request context, an 8 KiB stack). Parked, the heap part is the
// sockets and Conn (about 2 KiB, client side included) and the stack is
// the waiting goroutine's: 2 KiB in the gateway, where most goroutines are
// parked ones, up to 8 KiB here (and twice that under the race detector),
// since a new goroutine starts with the average stack the last GC saw and
// a wait this deep stops shrinking at 4 KiB. The bounds are loose: they
// fail if a read buffer or request context stays with idle connections.
func TestIdleConnectionsParkWithoutBuffers(t *testing.T) {
	ps := startParkingServer(t, Limits{IdleTimeout: time.Minute, ReadHeaderTimeout: 10 * time.Second}, nil)
	const n = 300
	heap0, stack0 := memInUse()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 4096)
	for range n {
		c, err := net.Dial("tcp", ps.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// One request each, read with a shared buffer so the client side
		// holds only its sockets.
		if _, err := io.WriteString(c, getRequest); err != nil {
			t.Fatal(err)
		}
		got := 0
		for !strings.HasSuffix(string(buf[:got]), "\r\n\r\nok") {
			m, err := c.Read(buf[got:])
			if err != nil {
				t.Fatalf("reading the response: %v (%q)", err, buf[:got])
			}
			got += m
		}
	}
	ps.waitParked(t, n)
	heap1, stack1 := memInUse()
	heap, stack := (heap1-heap0)/n, (stack1-stack0)/n
	per := heap + stack
	t.Logf("Go memory per parked connection (server and client side): %d B heap, %d B stack", heap, stack)
	if heap > 8<<10 || per > 20<<10 {
		t.Fatalf("%d B of Go memory per idle connection (%d B heap), want under 20 KiB (8 KiB heap): is the 16 KiB read buffer held again?", per, heap)
	}

	// A parked connection serves its next request and parks again.
	br := bufio.NewReader(conns[0])
	if resp, body := exchange(t, conns[0], br, getRequest); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("parked connection answered %d %q", resp.StatusCode, body)
	}
	ps.waitParked(t, n)
}

// memInUse is the Go heap and stack memory in use once garbage, pooled
// buffers included, is gone.
func memInUse() (heap, stack int64) {
	var ms runtime.MemStats
	// The second cycle empties sync.Pools; each cycle halves a stack
	// using under a quarter of it.
	for range 4 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}

// After parking, a connection keeps full HTTP semantics: a streamed body
// larger than fasthttp's read-ahead, keep-alive, and the header-size limit
// (431, not a truncated request) all work as on a connection never parked.
func TestParkedConnectionKeepsHTTPSemantics(t *testing.T) {
	ps := startParkingServer(t, Limits{IdleTimeout: time.Minute, MaxHeaderSize: 4096}, nil)
	c, err := net.Dial("tcp", ps.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	exchange(t, c, br, getRequest)
	ps.waitParked(t, 1)

	const size = 1 << 20
	var chunked strings.Builder
	chunked.WriteString("POST /count HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("b", 32<<10)
	for sent := 0; sent < size; sent += len(chunk) {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", len(chunk), chunk)
	}
	chunked.WriteString("0\r\n\r\n")
	if resp, body := exchange(t, c, br, chunked.String()); resp.StatusCode != 200 || body != strconv.Itoa(size) {
		t.Fatalf("streamed body after parking: %d %q", resp.StatusCode, body)
	}
	ps.waitParked(t, 1)

	big := "GET / HTTP/1.1\r\nHost: edge\r\nX-Big: " + strings.Repeat("h", 8<<10) + "\r\n\r\n"
	if resp, _ := exchange(t, c, br, big); resp.StatusCode != fasthttp.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("an 8 KiB header over a 4 KiB limit after parking got %d, want 431", resp.StatusCode)
	}
}

// The idle timeout still closes a parked connection, and closing the
// listener (shutdown) closes the parked ones.
func TestParkedConnectionsCloseAtIdleTimeoutAndShutdown(t *testing.T) {
	const idle = 600 * time.Millisecond
	ps := startParkingServer(t, Limits{IdleTimeout: idle}, nil)
	dialOne := func() (net.Conn, time.Time) {
		c, err := net.Dial("tcp", ps.addr)
		if err != nil {
			t.Fatal(err)
		}
		exchange(t, c, bufio.NewReader(c), getRequest)
		return c, time.Now()
	}
	c, served := dialOne()
	defer c.Close()
	ps.waitParked(t, 1)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("parked connection at its idle timeout: %v, want EOF", err)
	}
	if waited := time.Since(served); waited < idle-100*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout %v", waited, idle)
	}
	ps.waitParked(t, 0)

	c2, _ := dialOne()
	defer c2.Close()
	ps.waitParked(t, 1)
	_ = ps.ln.Close()
	_ = c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("parked connection after the listener closed: %v, want EOF", err)
	}
}

// A TLS connection parks and resumes like a plain one.
func TestParkedTLSConnectionResumes(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	leaf := ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}})
	ps := startParkingServer(t, Limits{IdleTimeout: time.Minute}, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}})
	c, err := tls.Dial("tcp", ps.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "api.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		if resp, body := exchange(t, c, br, getRequest); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d over TLS: %d %q", i, resp.StatusCode, body)
		}
		ps.waitParked(t, 1)
	}
}

// BenchmarkParkAndResume is the CPU a park and resume cost: 32 keep-alive
// connections, each pausing 3 ms before every request, where connections
// park after 1 ms ("parked") or never ("held"). The process's CPU per
// request (client included, so compare the two) is reported as
// cpu-us/req, and the share of requests that found their connection
// parked as parked/req; the CPU difference is what a park and resume cost.
//
//	go test -run '^$' -bench ParkAndResume -benchtime 4000x ./proxy/edge/
func BenchmarkParkAndResume(b *testing.B) {
	const conns = 32
	for _, tc := range []struct {
		name  string
		after time.Duration
	}{{"held", time.Hour}, {"parked", time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			ps := startParkingServerAfter(b, Limits{IdleTimeout: 2 * time.Hour}, nil, tc.after)
			type client struct {
				c  net.Conn
				br *bufio.Reader
			}
			clients := make([]client, conns)
			for i := range clients {
				c, err := net.Dial("tcp", ps.addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				clients[i] = client{c, bufio.NewReader(c)}
				exchange(b, c, clients[i].br, getRequest)
			}
			var parked atomic.Int64
			before := processCPU()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, cl := range clients {
				n := b.N / conns
				if i < b.N%conns {
					n++
				}
				wg.Go(func() {
					for range n {
						time.Sleep(3 * time.Millisecond)
						parked.Add(ps.ln.ParkedConnections())
						exchange(b, cl.c, cl.br, getRequest)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-before).Microseconds())/float64(b.N), "cpu-us/req")
			b.ReportMetric(float64(parked.Load())/conns/float64(b.N), "parked/req")
		})
	}
}

// processCPU is the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

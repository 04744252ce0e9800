package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func getOK(t *testing.T, c *http.Client, url string) error {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return errors.New(resp.Status)
	}
	return nil
}

// During the lame duck the server is not ready but still accepts; only
// when it ends does the listener close.
func TestGracefulStopServesThroughLameDuckThenStopsAccepting(t *testing.T) {
	srv := startTestServer(t, staticOnly, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "http://" + srv.addr + "/hello"

	endLameDuck, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() {
		stopped <- srv.GracefulStop(endLameDuck, time.Hour, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	for !srv.ShuttingDown() {
		time.Sleep(time.Millisecond) // BeginShutdown is the first thing GracefulStop does
	}
	for i := 0; i < 3; i++ { // new connections each time: the server answers Connection: close
		if err := getOK(t, c, url); err != nil {
			t.Fatalf("request %d during the lame duck: %v", i, err)
		}
	}
	cancel() // a second signal ends the lame duck early
	if err := <-stopped; err != nil {
		t.Fatalf("GracefulStop: %v", err)
	}
	<-srv.served
	if _, err := net.DialTimeout("tcp", srv.addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after the lame duck")
	}
}

// A request still running when drain_timeout ends has its connection
// closed, and the caller learns the drain was cut.
func TestGracefulStopClosesConnectionsAtDrainTimeout(t *testing.T) {
	var logs lockedBuffer
	srv := startTestServer(t, staticOnly, slog.New(slog.NewTextHandler(&logs, nil)))
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The connection stays busy with a body that never finishes, as with
	// a stalled upload.
	io.WriteString(conn, "POST /hello HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n0123456789")
	for srv.InFlight() == 0 && srv.OpenConnections() == 0 {
		time.Sleep(time.Millisecond)
	}

	start := time.Now()
	err = srv.GracefulStop(context.Background(), 0, 300*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	if !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("GracefulStop = %v, want ErrDrainTimeout", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("drain took %v for a 300ms timeout", d)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, conn) // whatever was answered, then the close
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the busy connection is still open after the drain timeout")
	}
	if !strings.Contains(logs.String(), "drain timeout reached") {
		t.Fatalf("no log line: %s", logs.String())
	}
}

// Connections over server.max_connections are answered 503 with their
// status category, counted and logged, before fasthttp sees them.
func TestConnectionsOverTheCapAreRefusedVisibly(t *testing.T) {
	var logs lockedBuffer
	srv := startTestServer(t, strings.Replace(staticOnly, `server: {listen: "127.0.0.1:0"}`,
		`server: {listen: "127.0.0.1:0", max_connections: 2}`, 1), slog.New(slog.NewTextHandler(&logs, nil)))
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// One full exchange proves the server took this connection.
		io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		resp.Body.Close()
		held = append(held, c)
	}
	over, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("the refused connection got no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get(filters.StatusHeader) != string(CategoryConnectionLimit) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("refusal: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if n := srv.RefusedConnections(); n != 1 {
		t.Fatalf("refused connections = %d, want 1", n)
	}
	if !strings.Contains(logs.String(), "connection refused: server.max_connections reached") {
		t.Fatalf("refusal not logged: %s", logs.String())
	}
	// A freed slot is usable again.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.OpenConnections() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if err := getOK(t, c, "http://"+srv.addr+"/hello"); err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
}

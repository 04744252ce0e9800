package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// startLimitedProcess runs the gateway with an open-file limit of n (set by
// the shell before exec, soft and hard).
func startLimitedProcess(t *testing.T, configPath string, n int) *proc {
	t.Helper()
	cmd := exec.Command("bash", "-c", fmt.Sprintf("ulimit -n %d && exec %q -config %q -log-format json", n, gatewayBin, configPath))
	cmd.Env = os.Environ()
	return startCmd(t, cmd)
}

// idleConns opens n connections to addr that send nothing.
func idleConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var out []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		out = append(out, c)
	}
	t.Cleanup(func() {
		for _, c := range out {
			c.Close()
		}
	})
	return out
}

// Issue 10 item 8: running out of file descriptors must not stop the
// gateway. With max_connections above the fd limit, idle connections make
// accept() fail with EMFILE: the gateway logs and counts it, keeps serving
// the connections it has, and accepts again once descriptors free up.
func TestFDExhaustionDoesNotStopTheGateway(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", max_connections: 5000}
admin: {listen: "127.0.0.1:0"}
origins: {backend: {instances: [{address: %q}]}}
routes: [{name: backend, match: {path_prefix: /o}, rewrite: {strip_prefix: /o}, origin: backend}]
`, o.addr))
	p := startLimitedProcess(t, path, 200)
	// A keep-alive connection opened before the flood, with one request.
	early, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	ask := func(conn net.Conn) int {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET /o/x HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
			t.Fatalf("write: %v", err)
		}
		resp, err := http.ReadResponse(bufioReader(conn), nil)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := ask(early); st != 200 {
		t.Fatalf("before the flood: %d", st)
	}

	flood := idleConns(t, p.addr, 300) // more than the 200 descriptors the gateway has
	p.waitFor(t, "accepting connections failed", 10*time.Second)
	if st := ask(early); st != 200 {
		t.Fatalf("an existing connection during descriptor exhaustion: %d", st)
	}
	for _, c := range flood {
		c.Close()
	}
	// Once descriptors are free again, new connections are served.
	eventually(t, 10*time.Second, "a new connection is served after the flood", func() bool {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		return ask(c) == 200
	})
	if v := metricValue(t, p.adminAddr, "floodgate_accept_errors_total"); v < 1 {
		t.Errorf("floodgate_accept_errors_total = %v, want > 0", v)
	}
}

// With max_connections left at its default (half the fd limit), the same
// flood never reaches the fd limit: connections beyond the cap are refused
// with 503 and closed, and accept never fails.
func TestDefaultMaxConnectionsStaysBelowTheFDLimit(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
origins: {backend: {instances: [{address: %q}]}}
routes: [{name: backend, match: {path_prefix: /o}, rewrite: {strip_prefix: /o}, origin: backend}]
`, o.addr))
	p := startLimitedProcess(t, path, 200)
	flood := idleConns(t, p.addr, 150) // beyond the automatic cap of 100
	// The last connection is over the cap: it gets a 503 and is closed.
	last := flood[len(flood)-1]
	_ = last.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufioReader(last), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("connection over the cap: %v %v", resp, err)
	}
	resp.Body.Close()
	if v := metricValue(t, p.adminAddr, "floodgate_accept_errors_total"); v != 0 {
		t.Errorf("accept failed %v times; the automatic cap should keep descriptors free", v)
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

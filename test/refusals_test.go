package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Answers given before a request reaches the chain are as visible as any
// other: a body refused at Expect: 100-continue and a connection refused
// at server.max_connections each carry X-Floodgate-Status, are logged and
// are counted.
func TestRefusalsBeforeTheChainAreVisible(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", max_connections: 3, max_body_size: 1KiB}
admin: {listen: "127.0.0.1:0"}
origins:
  backend:
    instances: [{address: %q}]
routes:
  - name: backend
    match: {path_prefix: /o}
    origin: backend
`, o.addr))
	p := startProcess(t, path)
	c := httpClient(t)
	metric := func(line string) bool {
		resp, body := adminGet(t, c, "http://"+p.adminAddr+"/metrics", "")
		if resp.StatusCode != 200 {
			t.Fatalf("metrics: %d", resp.StatusCode)
		}
		return strings.Contains(string(body), line+"\n")
	}

	// 1. Expect: 100-continue with a body over the limit.
	resp, _ := raw(t, p.addr, "POST /o/upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
	if resp.StatusCode != 413 || resp.Header.Get("X-Floodgate-Status") != "request_too_large" {
		t.Fatalf("expect refusal: %d %q", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"))
	}
	eventually(t, 5*time.Second, "the access-log line of the 413", func() bool {
		return strings.Contains(p.stdout.String(), `"path":"/o/upload","status":413,"category":"request_too_large"`)
	})
	if !metric(`floodgate_requests_total{category="request_too_large",code_class="4xx",route="none"} 1`) {
		t.Fatal("the 413 was not counted in floodgate_requests_total")
	}

	// 2. A fourth connection while three are open.
	for i := 0; i < 3; i++ {
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /o/held-%d HTTP/1.1\r\nHost: h\r\n\r\n", i)
		r, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, r, err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	over, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetDeadline(time.Now().Add(5 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("the connection over the cap got no answer: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != 503 || r.Header.Get("X-Floodgate-Status") != "connection_limit" {
		t.Fatalf("over the cap: %d %q", r.StatusCode, r.Header.Get("X-Floodgate-Status"))
	}
	ev := p.waitFor(t, "connection refused: server.max_connections reached", 5*time.Second)
	if ev["category"] != "connection_limit" || ev["max_connections"] != 3.0 {
		t.Errorf("refusal log: %v", ev)
	}
	if !metric(`floodgate_connections_refused_total{reason="max_connections"} 1`) {
		t.Fatal("the refusal was not counted")
	}
}

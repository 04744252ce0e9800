package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultOrigin is a raw TCP origin that misbehaves on purpose, chosen by
// the request path. It speaks just enough HTTP/1.1 to read a request.
type faultOrigin struct {
	ln      net.Listener
	wg      sync.WaitGroup
	stop    chan struct{}
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	uploads chan string // how each /upload ended: "complete" or the read error
	bigCut  chan struct{}
}

func startFaultOrigin(t *testing.T) *faultOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &faultOrigin{ln: ln, stop: make(chan struct{}), conns: map[net.Conn]struct{}{},
		uploads: make(chan string, 16), bigCut: make(chan struct{}, 16)}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			o.conns[c] = struct{}{}
			o.mu.Unlock()
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				o.serve(c)
				o.mu.Lock()
				delete(o.conns, c)
				o.mu.Unlock()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		close(o.stop)
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

func (o *faultOrigin) addr() string { return o.ln.Addr().String() }

// serve answers requests on one connection until a fault ends it.
func (o *faultOrigin) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		path := strings.TrimPrefix(req.URL.Path, "/f")
		switch path {
		case "/ok":
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			continue
		case "/reset-before-headers":
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
		case "/mid-body-close":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
			c.Write(make([]byte, 100000))
		case "/short-body":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("s", 50))
		case "/garbage-status":
			io.WriteString(c, "HTTP/1.1 two-hundred OK\r\n\r\n")
		case "/interim":
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 100 Continue\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
			continue
		case "/hang-after-headers":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
			<-o.stop
		case "/upgrade":
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			<-o.stop // now "speaking websocket": waits for frames forever
		case "/big":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 268435456\r\n\r\n")
			chunk := make([]byte, 64<<10)
			for sent := 0; sent < 256<<20; sent += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					o.bigCut <- struct{}{}
					return
				}
			}
		case "/upload":
			n, err := io.Copy(io.Discard, req.Body)
			if err != nil {
				o.uploads <- fmt.Sprintf("aborted after %d bytes: %v", n, err)
				return
			}
			o.uploads <- "complete"
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			continue
		}
		return
	}
}

func faultConfig(originAddr string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  write_progress_timeout: 300ms
admin: {listen: "127.0.0.1:0"}
origins:
  faults:
    instances: [{address: %q}]
    timeouts: {connect: 500ms, response: 500ms}
    breaker: {consecutive_failures: 1000, failure_ratio: 0}
    retry: {attempts: 1}
  single:
    instances: [{address: %q}]
    max_conns_per_instance: 1
    breaker: {consecutive_failures: 1000, failure_ratio: 0}
    retry: {attempts: 1}
routes:
  - {name: single, match: {path_prefix: /one}, rewrite: {strip_prefix: /one}, origin: single}
  - {name: faults, match: {path_prefix: /f}, origin: faults}
`, originAddr, originAddr)
}

// metricValue scrapes one sample ("name{labels}" as printed, or a bare
// name) from the gateway's /metrics; 0 when absent.
func metricValue(t *testing.T, adminAddr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(line[len(series):]), 64)
			return v
		}
	}
	return 0
}

// accessLines returns the access log lines for path, in order.
func accessLines(p *proc, path string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(p.stdout.String(), "\n") {
		if m := parseJSON(l); m != nil && m["msg"] == "request" && m["path"] == path {
			out = append(out, m)
		}
	}
	return out
}

// Issue 10 items 9-11 and the fault suite: each origin and client fault
// gives the client a clean answer when one is still possible, a closed
// connection when not, and the access log and metrics name what really
// happened; afterwards requests succeed and goroutines do not grow.
func TestFaultSuite(t *testing.T) {
	o := startFaultOrigin(t)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, faultConfig(o.addr()))
	p := startProcess(t, path)
	c := httpClient(t)
	healthy := func(when string) {
		t.Helper()
		for _, u := range []string{"/f/ok", "/one/ok"} {
			resp, body := get(t, c, "http://"+p.addr+u)
			if resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("%s: %s answered %d %q", when, u, resp.StatusCode, body)
			}
		}
	}
	healthy("before the faults")
	quiet := func() float64 {
		eventually(t, 10*time.Second, "no request in flight", func() bool {
			return metricValue(t, p.adminAddr, "floodgate_requests_in_flight") == 0
		})
		return metricValue(t, p.adminAddr, "go_goroutines")
	}

	type originFault struct {
		path     string
		status   int    // what the client gets; 0: headers then a cut
		category string // in the log and X-Floodgate-Status
	}
	faults := []originFault{
		{"/f/reset-before-headers", 502, "origin_reset"},
		{"/f/short-body", 502, "origin_reset"},
		{"/f/garbage-status", 502, "origin_bad_response"},
		{"/f/hang-after-headers", 504, "origin_timeout"},
		{"/f/upgrade", 502, "origin_bad_response"},
		{"/f/interim", 200, "success"},
		{"/f/mid-body-close", 0, "origin_reset"},
	}
	round := func(n int) {
		for _, f := range faults {
			resp, err := c.Get("http://" + p.addr + f.path)
			if err != nil {
				t.Fatalf("%s: %v", f.path, err)
			}
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if f.status == 0 {
				// Failure after the status line: the client must see the
				// body cut short, never a complete-looking answer.
				if readErr == nil {
					t.Errorf("%s: body read completed (%d bytes); want a truncated body", f.path, len(body))
				}
			} else {
				if resp.StatusCode != f.status || resp.Header.Get("X-Floodgate-Status") != f.category {
					t.Errorf("%s: %d %s %q, want %d %s", f.path, resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body, f.status, f.category)
				}
				if f.path == "/f/interim" && string(body) != "final" {
					t.Errorf("interim responses: final body %q", body)
				}
			}
			var line map[string]any
			eventually(t, 5*time.Second, "access log for "+f.path, func() bool {
				ls := accessLines(p, strings.TrimPrefix(f.path, ""))
				if len(ls) < n {
					return false
				}
				line = ls[n-1]
				return true
			})
			if line["category"] != f.category {
				t.Errorf("%s: log category %v, want %s (log line %v)", f.path, line["category"], f.category, line)
			}
		}
	}

	round(1)
	healthy("after the origin faults")

	// Client fault: never reads a large response. The gateway cuts it
	// after write_progress_timeout and releases the single pooled origin
	// connection, so the next request through that pool succeeds.
	never, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer never.Close()
	io.WriteString(never, "GET /one/big HTTP/1.1\r\nHost: h\r\n\r\n")
	select {
	case <-o.bigCut:
	case <-time.After(10 * time.Second):
		t.Fatal("the origin connection serving a client that never reads was not released")
	}
	healthy("after a client that never reads")
	eventually(t, 5*time.Second, "access log for the never-reading client", func() bool {
		ls := accessLines(p, "/one/big")
		return len(ls) == 1 && ls[0]["category"] == "client_closed"
	})

	// Client fault: vanishes mid-upload. The origin sees the upload
	// aborted, the log says the client closed, the origin is not charged.
	up, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(up, "POST /f/upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n")
	up.Write(make([]byte, 100000))
	up.Close()
	select {
	case how := <-o.uploads:
		if how == "complete" {
			t.Fatal("the origin saw a complete upload from a client that vanished")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the origin never learnt the upload was aborted")
	}
	eventually(t, 5*time.Second, "access log for the vanished uploader", func() bool {
		return len(accessLines(p, "/f/upload")) == 1
	})
	if l := accessLines(p, "/f/upload")[0]; l["category"] != "client_closed" {
		t.Errorf("vanished uploader logged as %v", l)
	}
	healthy("after a client vanished mid-upload")

	// Metrics agree with the log.
	for series, min := range map[string]float64{
		`floodgate_requests_total{category="origin_reset",code_class="5xx",route="faults"}`:        2,
		`floodgate_requests_total{category="origin_reset",code_class="2xx",route="faults"}`:        1,
		`floodgate_requests_total{category="origin_bad_response",code_class="5xx",route="faults"}`: 2,
		`floodgate_requests_total{category="origin_timeout",code_class="5xx",route="faults"}`:      1,
		`floodgate_requests_total{category="client_closed",code_class="2xx",route="single"}`:       1,
	} {
		if v := metricValue(t, p.adminAddr, series); v < min {
			t.Errorf("%s = %v, want >= %v", series, v, min)
		}
	}

	// No goroutine growth: a second round of every fault leaves the
	// gateway with as many goroutines as the first did.
	after1 := quiet()
	round(2)
	healthy("after the second round")
	after2 := quiet()
	if after2 > after1+5 {
		t.Errorf("goroutines grew from %v to %v over a round of faults", after1, after2)
	}
}

func parseJSON(line string) map[string]any {
	if !strings.HasPrefix(line, "{") {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return nil
	}
	return m
}

package httpapi

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/internal/leaktest"
	"github.com/floodgate-dev/floodgate/timeseries"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// serve runs h behind a fasthttp server configured like cmd/timeseries (streamed bodies).
func serve(t *testing.T, o Options) (addr string, h *Handler) {
	t.Helper()
	svc, err := timeseries.Open(t.TempDir(), timeseries.DemoConfig(), timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	h = New(svc, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler:               func(rc *fasthttp.RequestCtx) { h.Serve(rc, strings.TrimPrefix(string(rc.Path()), "/ts/"), nil) },
		StreamRequestBody:     true,
		MaxRequestBodySize:    1 << 30,
		ReadTimeout:           10 * time.Second,
		MaxIdleWorkerDuration: 50 * time.Millisecond,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
		_ = svc.Close(context.Background())
	})
	return ln.Addr().String(), h
}

// sendHead opens a connection and sends a POST's head plus the first part of its body.
func sendHead(t *testing.T, addr string, length int, first string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	head := "POST /ts/" + timeseries.OpWriteSync + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(length) + "\r\n\r\n" + first
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	return conn
}

func readStatus(t *testing.T, conn net.Conn) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Issue 10 item 14: the length is checked before anything is buffered, and concurrent large
// batches share one budget of buffered bytes instead of each holding its own 15 MiB.
func TestLengthCheckedFirstAndBufferingBoundedAcrossRequests(t *testing.T) {
	const body = 15 << 20
	addr, h := serve(t, Options{MaxBodyBytes: 16 << 20, MaxBufferedBytes: 32 << 20})

	// fasthttp reads up to 8 KiB of a streamed body before calling the handler; past that,
	// the edge decides.
	preRead := strings.Repeat(" ", 8<<10)
	// Over the limit: 413 from the announced length, before the body is buffered.
	over := sendHead(t, addr, 17<<20, preRead)
	if st, b := readStatus(t, over); st != 413 || !strings.Contains(b, `"reason":"too_large"`) {
		t.Fatalf("oversized announcement: %d %s", st, b)
	}

	// Five 15 MiB batches at once: two fit in the 32 MiB budget, three are told to retry.
	prefix := `{"namespace":"demo","pad":"` + preRead
	var conns []net.Conn
	for i := 0; i < 5; i++ {
		conns = append(conns, sendHead(t, addr, body, prefix))
	}
	busy := 0
	var admitted []net.Conn
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil { // still reading the body: admitted
			admitted = append(admitted, c)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"reason":"busy"`) {
			t.Fatalf("over budget: %d %s", resp.StatusCode, b)
		}
		busy++
	}
	if busy != 3 || len(admitted) != 2 {
		t.Fatalf("%d busy, %d admitted; want 3 and 2", busy, len(admitted))
	}
	// The admitted ones complete (the store refuses the unknown field) and free the budget.
	rest := strings.Repeat("p", body-len(prefix)-2) + `"}`
	for _, c := range admitted {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write([]byte(rest)); err != nil {
			t.Fatal(err)
		}
		if st, b := readStatus(t, c); st != 400 || !strings.Contains(b, "pad") {
			t.Fatalf("admitted batch: %d %.200s", st, b)
		}
	}
	now, peak := h.Buffered()
	if now != 0 || peak > 32<<20 || peak < 2*body {
		t.Fatalf("buffered now %d, peak %d; want 0 and between %d and %d", now, peak, 2*body, 32<<20)
	}
}

func TestChunkedBodyOverLimitAndMethodAndOperation(t *testing.T) {
	addr, _ := serve(t, Options{MaxBodyBytes: 4 << 10})
	cl := &http.Client{}
	defer cl.CloseIdleConnections()
	post := func(path string, r io.Reader) (int, string) {
		resp, err := cl.Post("http://"+addr+path, "application/json", r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// No Content-Length (chunked): the reader's limit catches it.
	if st, b := post("/ts/"+timeseries.OpWriteSync, io.MultiReader(strings.NewReader(strings.Repeat(" ", 8<<10)))); st != 413 {
		t.Fatalf("chunked over limit: %d %s", st, b)
	}
	if st, b := post("/ts/"+timeseries.OpWriteSync, io.MultiReader(strings.NewReader(`{"namespace":"demo","events":[]}`))); st != 400 || !strings.Contains(b, "events") {
		t.Fatalf("chunked small body: %d %s", st, b)
	}
	if st, b := post("/ts/Nope", strings.NewReader("{}")); st != 404 || !strings.Contains(b, "unknown_operation") {
		t.Fatalf("unknown operation: %d %s", st, b)
	}
	resp, err := cl.Get("http://" + addr + "/ts/" + timeseries.OpRead)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

package eventstore

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/timeseries"
)

// rawPost sends a request whose body is cut short (Content-Length promises
// more than is sent) and returns the response. closeWrite ends the client's
// side so the server sees EOF; otherwise it is left waiting.
func rawPost(t *testing.T, base string, promised int, sent string, closeWrite bool) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	req := "POST /ts/" + timeseries.OpWriteSync + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(promised) + "\r\n\r\n" + sent
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func chainFor(t *testing.T, opts Options) *filters.Chain {
	t.Helper()
	ch, err := filters.NewChainBuilder().Build([]filters.Filter{New(openStore(t), opts)})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestTruncatedBodyIsClientError(t *testing.T) {
	base := serve(t, chainFor(t, Options{}), true)
	// More than the server's 1 KiB read-ahead, so the endpoint is the one
	// that meets the early EOF.
	resp := rawPost(t, base, 8<<10, `{"namespace":"demo","events":[`+strings.Repeat(" ", 2<<10), true)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(filters.StatusHeader) != string(filters.CategoryClientError) {
		t.Fatalf("truncated body: %d %q", resp.StatusCode, resp.Header.Get(filters.StatusHeader))
	}
	if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), `"reason":"invalid_body"`) {
		t.Errorf("body %s, want the endpoint's invalid_body error", b)
	}
	if !resp.Close {
		t.Error("connection should be closed after an unread body")
	}
}

func TestSlowBodyIsClientTimeout(t *testing.T) {
	base := serveTimeout(t, chainFor(t, Options{}), true, 300*time.Millisecond)
	resp := rawPost(t, base, 8<<10, `{"namespace":"demo","events":[`+strings.Repeat(" ", 2<<10), false)
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get(filters.StatusHeader) != string(filters.CategoryClientTimeout) {
		t.Fatalf("stalled body: %d %q", resp.StatusCode, resp.Header.Get(filters.StatusHeader))
	}
}

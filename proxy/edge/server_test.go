package edge

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// writeCountingListener counts the writes made to its connections.
type writeCountingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeCountingConn{c, l.writes}, nil
}

type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A 16 KiB response leaves the gateway's server in one write: header and
// body together fit the write buffer, so no second syscall is paid for it.
func TestResponseUpToTheWriteBufferIsOneWrite(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	ln := Listen(writeCountingListener{inner, &writes}, ListenerOptions{})
	body := strings.Repeat("x", 16<<10)
	srv := NewServer(func(rc *fasthttp.RequestCtx) { rc.SetBodyString(body) }, Limits{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Shutdown()
		<-done
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func() {
		resp, err := client.Get("http://" + inner.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(got) != len(body) {
			t.Fatalf("body of %d bytes, want %d", len(got), len(body))
		}
	}
	get() // the connection is open; count the next response alone
	before := writes.Load()
	get()
	if n := writes.Load() - before; n != 1 {
		t.Fatalf("a 16 KiB response took %d writes, want 1", n)
	}
}

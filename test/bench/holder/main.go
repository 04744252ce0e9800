// Command holder opens keep-alive connections to an HTTP server, sends one
// request on each so the server has served it and holds it as an idle
// keep-alive connection, and keeps them all open until it is stopped or
// -hold elapses. The benchmark measures the server's memory while they are
// held. One process can hold as many connections as its fd limit allows,
// so the benchmark runs two.
//
// With -websocket it holds WebSocket tunnels instead (ws_idle.sh): each
// connection does the upgrade handshake and exchanges one message, so the
// tunnel is known to relay both ways, before it is held idle. With -tls
// the connections speak TLS (the server's certificate is not verified:
// loopback benchmarks only).
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9300", "server address (loopback)")
	n := flag.Int("n", 1000, "connections to hold")
	path := flag.String("path", "/64", "request path")
	parallel := flag.Int("parallel", 32, "connections being opened at once")
	hold := flag.Duration("hold", 2*time.Minute, "stop by itself after this long")
	websocket := flag.Bool("websocket", false, "hold WebSocket tunnels (path is the handshake's)")
	useTLS := flag.Bool("tls", false, "connect with TLS, without verifying the server (loopback benchmarks)")
	flag.Parse()
	if *useTLS {
		dial = func(addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: 5 * time.Second}
			return tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // loopback benchmark
		}
	}

	conns := make([]net.Conn, 0, *n)
	var mu sync.Mutex
	var failed atomic.Int64
	var firstErr atomic.Value
	work := make(chan struct{})
	var wg sync.WaitGroup
	connect := openKeepAlive
	if *websocket {
		connect = openTunnel
	}
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := connect(*addr, *path)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	deadline := time.After(*hold)
	for i := 0; i < *n; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	msg := ""
	if e := firstErr.Load(); e != nil {
		msg = " first error: " + e.(string)
	}
	fmt.Printf("held %d failed %d%s\n", len(conns), failed.Load(), msg)
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-stop:
	case <-deadline:
	}
	for _, c := range conns {
		c.Close()
	}
}

// openKeepAlive connects, sends one request and reads its whole answer.
func openKeepAlive(addr, path string) (net.Conn, error) {
	return dialAndCheck(addr, "GET "+path+" HTTP/1.1\r\nHost: bench\r\n\r\n", func(c net.Conn, br *bufio.Reader, resp *http.Response) error {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			return fmt.Errorf("answer %d, close %v", resp.StatusCode, resp.Close)
		}
		return nil
	})
}

// dial opens a connection to the server (TLS with -tls).
var dial = func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

// dialAndCheck connects, writes req, reads the response head and lets
// check finish the exchange; the connection is returned only if check
// accepts it.
func dialAndCheck(addr, req string, check func(net.Conn, *bufio.Reader, *http.Response) error) (net.Conn, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err = io.WriteString(c, req); err == nil {
		br := bufio.NewReaderSize(c, 4096)
		var resp *http.Response
		if resp, err = http.ReadResponse(br, nil); err == nil {
			err = check(c, br, resp)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

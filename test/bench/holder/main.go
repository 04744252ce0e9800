// Command holder opens keep-alive connections to an HTTP server, sends one
// request on each so the server has served it and holds it as an idle
// keep-alive connection, and keeps them all open until it is stopped or
// -hold elapses. The benchmark measures the server's memory while they are
// held. One process can hold as many connections as its fd limit allows,
// so the benchmark runs two.
package main

import (
	"bufio"
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
	flag.Parse()

	conns := make([]net.Conn, 0, *n)
	var mu sync.Mutex
	var failed atomic.Int64
	var firstErr atomic.Value
	work := make(chan struct{})
	var wg sync.WaitGroup
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for range work {
				c, err := open(*addr, req, br)
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

// open connects, sends one request and reads its whole answer.
func open(addr string, req []byte, br *bufio.Reader) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	br.Reset(c)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != 200 || resp.Close) {
			err = fmt.Errorf("answer %d, close %v", resp.StatusCode, resp.Close)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

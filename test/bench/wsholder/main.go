// Command wsholder opens WebSocket tunnels through a gateway, exchanges
// one message on each (so the tunnel is known to relay both ways) and then
// holds them idle until it is stopped or -hold elapses, for the tunnel
// memory benchmark (ws_idle.sh). It speaks the handshake and one frame by
// hand (RFC 6455) so the holder itself stays small.
package main

import (
	"bufio"
	"bytes"
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

const handshake = "GET %s HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

func main() {
	addr := flag.String("addr", "127.0.0.1:24110", "gateway address (loopback)")
	n := flag.Int("n", 1000, "tunnels to hold")
	path := flag.String("path", "/ws", "handshake path")
	parallel := flag.Int("parallel", 32, "tunnels being opened at once")
	hold := flag.Duration("hold", 2*time.Minute, "stop by itself after this long")
	flag.Parse()

	req := fmt.Appendf(nil, handshake, *path)
	frame := maskedText([]byte("ping"))
	conns := make([]net.Conn, 0, *n)
	var mu sync.Mutex
	var failed atomic.Int64
	var firstErr atomic.Value
	work := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := open(*addr, req, frame)
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

// open does the handshake, sends one text frame and reads its echo.
func open(addr string, req, frame []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		err = fmt.Errorf("handshake answered %d", resp.StatusCode)
	}
	if err == nil {
		_, err = c.Write(frame)
	}
	if err == nil {
		echo := make([]byte, 6) // unmasked header (2) + "ping"
		if _, err = io.ReadFull(br, echo); err == nil && !bytes.Equal(echo[2:], []byte("ping")) {
			err = fmt.Errorf("echo %q", echo)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// maskedText is a client text frame (RFC 6455 5.2) with a payload under
// 126 bytes.
func maskedText(p []byte) []byte {
	key := [4]byte{7, 1, 2, 9}
	f := append([]byte{0x81, 0x80 | byte(len(p))}, key[:]...)
	for i, b := range p {
		f = append(f, b^key[i%4])
	}
	return f
}

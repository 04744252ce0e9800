package edge

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/testpki"
)

// tlsListener accepts through Listen with TLS; failed handshakes are
// reported on the returned channel.
func tlsListener(t *testing.T, timeout time.Duration) (*Listener, *testpki.CA, chan error) {
	t.Helper()
	ca := testpki.NewCA(t, "ca")
	leaf := ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 4)
	ln := Listen(inner, ListenerOptions{
		TLS:              &tls.Config{Certificates: []tls.Certificate{leaf.TLS}},
		HandshakeTimeout: timeout,
		OnHandshakeError: func(err error) { failed <- err },
		PlainHTTPAnswer:  []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\nConnection: close\r\n\r\ntls\n"),
	})
	t.Cleanup(func() { ln.Close() })
	return ln, ca, failed
}

// A handshake runs on the connection (not in Accept), completes within its
// timeout, and the connection then counts plaintext bytes; a client that
// never handshakes is cut at the timeout and its connection reads as a
// quiet EOF (no HTTP error response is attempted on it).
func TestTLSConnHandshake(t *testing.T) {
	ln, ca, failed := tlsListener(t, 300*time.Millisecond)
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "api.test"})
		if err == nil {
			_, _ = io.WriteString(c, "hello")
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.(*TLSConn)
	if !ok {
		t.Fatalf("accepted %T", c)
	}
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if info := tc.Info(); info == nil || info.ServerName != "api.test" || info.VersionName() != "1.3" || len(info.Names) != 0 {
		t.Fatalf("info %+v", info)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
	if ConnOf(tc) == nil || ConnOf(tc).BytesRead() != 5 {
		t.Fatalf("plaintext bytes counted: %d", ConnOf(tc).BytesRead())
	}
	tc.Close()

	// A client that connects and sends nothing.
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if n, err := c.Read(make([]byte, 10)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after a failed handshake: %d %v, want a quiet EOF", n, err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("handshake timeout took %v", el)
	}
	select {
	case err := <-failed:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("reported %v, want a timeout", err)
		}
	default:
		t.Fatal("the failed handshake was not reported")
	}
}

// A client speaking plain HTTP to the TLS listener is told so in plain
// text.
func TestTLSConnAnswersPlainHTTP(t *testing.T) {
	ln, _, failed := tlsListener(t, time.Second)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || strings.TrimSpace(string(body)) != "tls" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if err := <-failed; err == nil {
		t.Fatal("not reported")
	}
}

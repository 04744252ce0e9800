package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// scriptedOrigin is a raw TCP origin: each request (read up to its blank
// line) is answered with the next canned response, byte for byte, so the
// transport meets exactly the framing a test wants. A response ending in
// closeAfter makes the origin close the connection after writing it.
type scriptedOrigin struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	answers  []string
	wg       sync.WaitGroup
}

const closeAfter = "\x00close"

func newScriptedOrigin(t *testing.T, answers ...string) *scriptedOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &scriptedOrigin{ln: ln, answers: answers}
	o.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.accepted.Add(1)
			o.wg.Go(func() { o.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); o.wg.Wait() })
	return o
}

func (o *scriptedOrigin) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		o.mu.Lock()
		if len(o.answers) == 0 {
			o.mu.Unlock()
			return
		}
		a := o.answers[0]
		o.answers = o.answers[1:]
		o.mu.Unlock()
		closing := strings.HasSuffix(a, closeAfter)
		if _, err := io.WriteString(c, strings.TrimSuffix(a, closeAfter)); err != nil || closing {
			return
		}
	}
}

func (o *scriptedOrigin) client(t *testing.T) *fasthttp.HostClient {
	p := newClientPool()
	t.Cleanup(p.closeAll) // runs before the origin's cleanup: its connections end
	return p.get(poolKey{addr: o.ln.Addr().String(), connect: time.Second, response: 5 * time.Second, idle: time.Minute, maxConns: 4})
}

// originExchange sends a GET (or method) and returns the response, whose body
// stream (if any) the caller reads and closes.
func originExchange(t *testing.T, hc *fasthttp.HostClient, method string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://origin/x")
	resp := fasthttp.AcquireResponse()
	if err := hc.Do(req, resp); err != nil {
		fasthttp.ReleaseResponse(resp)
		t.Fatalf("%s: %v", method, err)
	}
	return resp
}

// drain reads a response's body, however it arrived, and releases it.
func drain(t *testing.T, resp *fasthttp.Response) (body string, readErr error) {
	t.Helper()
	defer fasthttp.ReleaseResponse(resp)
	if s := resp.BodyStream(); s != nil {
		b, err := io.ReadAll(s)
		_ = resp.CloseBodyStream()
		return string(b), err
	}
	return string(resp.Body()), nil
}

func TestTransportBuffersSmallKnownBodiesAndReusesTheConnection(t *testing.T) {
	o := newScriptedOrigin(t,
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nworld")
	hc := o.client(t)
	for _, want := range []string{"hello", "world"} {
		resp := originExchange(t, hc, "GET")
		if !isPooledBody(resp) {
			t.Fatal("a small body of known length must arrive whole (in a pooled buffer), not as a stream")
		}
		if got, _ := drain(t, resp); got != want {
			t.Fatalf("body %q, want %q", got, want)
		}
	}
	if n := o.accepted.Load(); n != 1 {
		t.Fatalf("%d connections for two exchanges, want 1 (reused)", n)
	}
}

func TestTransportStreamsLargeFixedAndChunkedBodies(t *testing.T) {
	large := strings.Repeat("x", bufferedBodyLimit+1)
	o := newScriptedOrigin(t,
		"HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(large))+"\r\n\r\n"+large,
		// Chunk extensions, upper-case hex, a trailer: all legal.
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	hc := o.client(t)
	resp := originExchange(t, hc, "GET")
	if resp.BodyStream() == nil || isPooledBody(resp) {
		t.Fatal("a body above the buffered limit must stream")
	}
	if got, err := drain(t, resp); err != nil || got != large {
		t.Fatalf("large body: %d bytes, err %v", len(got), err)
	}
	resp = originExchange(t, hc, "GET")
	if got, err := drain(t, resp); err != nil || got != "hello0123456789" {
		t.Fatalf("chunked body %q, err %v", got, err)
	}
	resp = originExchange(t, hc, "GET")
	if got, _ := drain(t, resp); got != "ok" {
		t.Fatalf("third body %q", got)
	}
	if n := o.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1: a stream read to its end returns the connection", n)
	}
}

func TestTransportCloseDelimitedBodyIsNotReused(t *testing.T) {
	o := newScriptedOrigin(t,
		"HTTP/1.1 200 OK\r\n\r\nuntil close"+closeAfter,
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	hc := o.client(t)
	if got, err := drain(t, originExchange(t, hc, "GET")); err != nil || got != "until close" {
		t.Fatalf("close-delimited body %q, err %v", got, err)
	}
	if got, _ := drain(t, originExchange(t, hc, "GET")); got != "ok" {
		t.Fatalf("next body %q", got)
	}
	if n := o.accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2: a close-delimited connection is done", n)
	}
}

func TestTransportAbandonedStreamClosesTheConnection(t *testing.T) {
	large := strings.Repeat("y", 3*bufferedBodyLimit)
	o := newScriptedOrigin(t,
		"HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(large))+"\r\n\r\n"+large,
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	hc := o.client(t)
	resp := originExchange(t, hc, "GET")
	if _, err := io.ReadFull(resp.BodyStream(), make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	_ = resp.CloseBodyStream() // mid-body: the rest must not be read as the next response
	fasthttp.ReleaseResponse(resp)
	if got, _ := drain(t, originExchange(t, hc, "GET")); got != "ok" {
		t.Fatalf("next body %q", got)
	}
	if n := o.accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestTransportBodylessAnswers(t *testing.T) {
	o := newScriptedOrigin(t,
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", // HEAD: the length, no body
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	hc := o.client(t)
	resp := originExchange(t, hc, "GET")
	if resp.StatusCode() != 204 {
		t.Fatalf("status %d after an interim 100, want 204", resp.StatusCode())
	}
	drain(t, resp)
	resp = originExchange(t, hc, "HEAD")
	if resp.Header.ContentLength() != 1000 || resp.BodyStream() != nil || len(resp.Body()) != 0 {
		t.Fatalf("HEAD: length %d, stream %v, body %d bytes", resp.Header.ContentLength(), resp.BodyStream() != nil, len(resp.Body()))
	}
	drain(t, resp)
	drain(t, originExchange(t, hc, "GET"))
	if got, _ := drain(t, originExchange(t, hc, "GET")); got != "ok" {
		t.Fatalf("last body %q", got)
	}
	if n := o.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestTransportBrokenFraming(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		// want is the error of the exchange (small bodies) or of reading
		// the stream.
		want error
	}{
		{"truncated small body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort" + closeAfter, nil},
		{"more than announced", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", errBodyBeyondLength},
		{"truncated stream", "HTTP/1.1 200 OK\r\nContent-Length: " + itoa(bufferedBodyLimit+10) + "\r\n\r\nshort" + closeAfter, io.ErrUnexpectedEOF},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", errBadChunk},
		{"chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", errBadChunk},
		{"chunked cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel" + closeAfter, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newScriptedOrigin(t, tc.answer)
			hc := o.client(t)
			req := fasthttp.AcquireRequest()
			defer fasthttp.ReleaseRequest(req)
			req.SetRequestURI("http://origin/x")
			// A POST is not retried, so the origin's one answer is what
			// the exchange sees.
			req.Header.SetMethod("POST")
			req.SetBodyString("b")
			resp := fasthttp.AcquireResponse()
			err := hc.Do(req, resp)
			if err == nil {
				_, err = drain(t, resp)
			} else {
				fasthttp.ReleaseResponse(resp)
			}
			switch {
			case err == nil:
				t.Fatal("broken framing must fail the exchange or the stream")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if code, _ := classifyOriginError(err); code != 502 {
				t.Fatalf("classified as %d, want 502", code)
			}
		})
	}
}

func TestReadChunkSizeBounds(t *testing.T) {
	for line, want := range map[string]int64{"0\r\n": 0, "ff\r\n": 255, "1A;x=y\r\n": 26, "10 \r\n": 16} {
		got, err := readChunkSize(bufio.NewReader(strings.NewReader(line)))
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", line, got, err, want)
		}
	}
	for _, line := range []string{"\r\n", ";x\r\n", "-1\r\n", "1000000000000000\r\n", "12"} {
		if _, err := readChunkSize(bufio.NewReader(strings.NewReader(line))); err == nil {
			t.Errorf("%q: accepted", line)
		}
	}
	big := bytes.Repeat([]byte("X-T: v\r\n"), maxTrailerBytes/8+1)
	if err := skipTrailers(bufio.NewReader(bytes.NewReader(append(big, "\r\n"...)))); !errors.Is(err, errBadChunk) {
		t.Fatalf("oversized trailers: %v", err)
	}
}

func itoa(n int) string { return string(fasthttp.AppendUint(nil, n)) }

func TestTransportDoesNotPoolClosingOrUpgradedConnections(t *testing.T) {
	o := newScriptedOrigin(t,
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	hc := o.client(t)
	if got, _ := drain(t, originExchange(t, hc, "GET")); got != "ok" {
		t.Fatalf("first body %q", got)
	}
	resp := originExchange(t, hc, "GET")
	if resp.StatusCode() != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode())
	}
	drain(t, resp)
	if got, _ := drain(t, originExchange(t, hc, "GET")); got != "ok" {
		t.Fatalf("last body %q", got)
	}
	if n := o.accepted.Load(); n != 3 {
		t.Fatalf("%d connections for three exchanges, want 3: neither a closing nor an upgraded connection is reused", n)
	}
}

package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// errBodyBeyondLength is an origin that sent more bytes after a body than
// its Content-Length announced: the connection's framing is lost.
var errBodyBeyondLength = errors.New("origin sent more body than its Content-Length")

// errBadChunk is a chunked body whose framing cannot be parsed.
var errBadChunk = errors.New("origin sent a malformed chunked body")

// maxInterimResponses bounds the 1xx answers (100 Continue, 103 Early
// Hints) skipped before the final response.
const maxInterimResponses = 16

// maxTrailerBytes bounds the trailer section of a chunked body, which is
// read and dropped (the response headers have left by then).
const maxTrailerBytes = 16 << 10

// pooledConn is fasthttp's pooled client connection (an unexported type,
// so the transport is generic over it and learns it from the HostClient's
// methods).
type pooledConn interface{ Conn() net.Conn }

// originTransport is the RoundTripper of every origin HostClient. It reads
// the response headers before deciding how to read the body: a body of
// known length up to bufferedBodyLimit is read whole into a pooled buffer
// the response carries as its body stream (body_pool.go), and the
// connection goes back to the pool at once; any other body streams
// through a pooled originBody that hands the connection back when it is
// closed. fasthttp's own transport must choose streaming for every
// response of a client before seeing any, and allocates a stream wrapper
// and three closures for each streamed one, so small answers paid for a
// stream (and a copy) they did not need.
type originTransport[C pooledConn] struct {
	hc      *fasthttp.HostClient
	acquire func(time.Duration, bool) (C, error)
	release func(C)
	discard func(C)
	bodies  sync.Pool // *originBody[C]
}

// newOriginTransport installs the transport on hc; it is called with hc's
// own connection methods, which fixes C.
func newOriginTransport[C pooledConn](hc *fasthttp.HostClient, acquire func(time.Duration, bool) (C, error), release, discard func(C)) {
	t := &originTransport[C]{hc: hc, acquire: acquire, release: release, discard: discard}
	t.bodies.New = func() any { return &originBody[C]{t: t} }
	hc.Transport = t
}

// RoundTrip sends req on a pooled connection and reads the answer into
// resp. retry tells fasthttp the request may be sent again (its RetryIfErr
// decides): nothing of the answer was used.
func (t *originTransport[C]) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	cc, err := t.acquire(0, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		t.discard(cc)
		return true, err
	}

	br := hc.AcquireReader(conn)
	resp.Header.DisableNormalizing()
	if err := readFinalHeader(&resp.Header, br); err != nil {
		hc.ReleaseReader(br)
		t.discard(cc)
		return true, err
	}
	status := resp.StatusCode()
	// An upgraded connection (101) is no longer HTTP: never pooled.
	reuse := !req.ConnectionClose() && !resp.ConnectionClose() && status != fasthttp.StatusSwitchingProtocols
	if req.Header.IsHead() || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		hc.ReleaseReader(br)
		t.done(cc, reuse)
		return false, nil
	}
	size := resp.Header.ContentLength()
	if size == 0 {
		if br.Buffered() > 0 {
			hc.ReleaseReader(br)
			t.discard(cc)
			return false, errBodyBeyondLength
		}
		hc.ReleaseReader(br)
		t.done(cc, reuse)
		return false, nil
	}
	if size > 0 && size <= bufferedBodyLimit {
		pb := acquirePooledBody(size)
		_, err := io.ReadFull(br, pb.buf)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // an announced body that never started is cut short too
		}
		if err == nil && br.Buffered() > 0 {
			err, reuse = errBodyBeyondLength, false
		}
		hc.ReleaseReader(br)
		if err != nil {
			pb.release()
			t.discard(cc)
			return !errors.Is(err, errBodyBeyondLength), err
		}
		t.done(cc, reuse)
		resp.SetBodyStream(pb, size)
		return false, nil
	}
	b := t.bodies.Get().(*originBody[C])
	b.cc, b.br, b.reuse = cc, br, reuse
	switch {
	case size >= 0:
		b.mode, b.left = bodyFixed, int64(size)
	case size == -1:
		b.mode = bodyChunked
	default:
		// Delimited by the close of the connection, which therefore
		// cannot be reused.
		b.mode, b.reuse = bodyUntilClose, false
	}
	resp.SetBodyStream(b, size)
	return false, nil
}

// done returns a connection whose exchange is complete to the pool, or
// closes it.
func (t *originTransport[C]) done(cc C, reuse bool) {
	if reuse {
		t.release(cc)
	} else {
		t.discard(cc)
	}
}

// readFinalHeader reads the response header, skipping interim (1xx other
// than 101) answers.
func readFinalHeader(h *fasthttp.ResponseHeader, br *bufio.Reader) error {
	for range maxInterimResponses {
		if err := h.Read(br); err != nil {
			return err
		}
		if s := h.StatusCode(); s >= 200 || s == fasthttp.StatusSwitchingProtocols {
			return nil
		}
	}
	return errors.New("origin sent too many interim (1xx) responses")
}

// bodyMode is how a streamed body is delimited.
type bodyMode uint8

const (
	bodyFixed      bodyMode = iota // Content-Length
	bodyChunked                    // Transfer-Encoding: chunked
	bodyUntilClose                 // neither: until the origin closes
)

// originBody streams one response body from its origin connection. It is
// read by one goroutine at a time (the server writing the client's
// response) and closed once, by fasthttp (CloseWithError) when the
// response is complete or abandoned.
type originBody[C pooledConn] struct {
	t     *originTransport[C]
	cc    C
	br    *bufio.Reader
	mode  bodyMode
	left  int64 // bytes left of the body (fixed) or of the current chunk
	reuse bool  // the connection may be pooled once the body is read
	// chunkOpen is set between a chunk's data and its closing CRLF.
	chunkOpen bool
	// ended is set once the whole body, framing included, was read.
	ended bool
	err   error // sticky read error
}

func (b *originBody[C]) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.ended {
		return 0, io.EOF
	}
	var n int
	var err error
	switch b.mode {
	case bodyFixed:
		if b.left == 0 {
			b.ended = true
			return 0, io.EOF
		}
		n, err = b.readData(p)
		if b.left == 0 {
			b.ended = true
		}
	case bodyChunked:
		n, err = b.readChunked(p)
	default:
		n, err = b.br.Read(p)
		if err == io.EOF {
			b.ended = true
			return n, io.EOF
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// readData reads up to b.left bytes of data; the connection ending first
// is a truncated body.
func (b *originBody[C]) readData(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *originBody[C]) readChunked(p []byte) (int, error) {
	for b.left == 0 {
		if b.chunkOpen {
			if err := readCRLF(b.br); err != nil {
				return 0, err
			}
			b.chunkOpen = false
		}
		size, err := readChunkSize(b.br)
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := skipTrailers(b.br); err != nil {
				return 0, err
			}
			b.ended = true
			return 0, io.EOF
		}
		b.left, b.chunkOpen = size, true
	}
	return b.readData(p)
}

// CloseWithError ends the body: the connection goes back to the pool when
// the body was read to its end, and is closed otherwise (its framing is
// mid-message). writeErr, the client's failure, does not matter to the
// origin connection.
func (b *originBody[C]) CloseWithError(error) error {
	t := b.t
	t.done(b.cc, b.reuse && b.ended && b.err == nil)
	t.hc.ReleaseReader(b.br)
	*b = originBody[C]{t: t}
	t.bodies.Put(b)
	return nil
}

// readChunkSize reads a chunk-size line (hex digits, optional extensions)
// and returns the size.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, chunkReadError(err)
	}
	var size int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			if digits == 0 || (c != ';' && c != '\r' && c != '\n' && c != ' ' && c != '\t') {
				return 0, errBadChunk
			}
			return size, nil
		}
		if digits == 15 { // 2^60: no real chunk is near it
			return 0, errBadChunk
		}
		size = size<<4 | int64(d)
		digits++
	}
	return 0, errBadChunk
}

// readCRLF reads the line break that ends a chunk's data.
func readCRLF(br *bufio.Reader) error {
	c, err := br.ReadByte()
	if err == nil && c == '\r' {
		c, err = br.ReadByte()
	}
	switch {
	case err != nil:
		return chunkReadError(err)
	case c != '\n':
		return errBadChunk
	}
	return nil
}

// skipTrailers reads the trailer section and the blank line that ends a
// chunked body.
func skipTrailers(br *bufio.Reader) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return chunkReadError(err)
		}
		if total += len(line); total > maxTrailerBytes {
			return errBadChunk
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return nil
		}
	}
}

func chunkReadError(err error) error {
	switch {
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case errors.Is(err, bufio.ErrBufferFull):
		return errBadChunk
	}
	return err
}

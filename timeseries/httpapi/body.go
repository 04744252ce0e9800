package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
)

// byteBudget bounds the bytes of request bodies buffered at once. Acquisition never waits:
// a request that does not fit is answered 503 busy, which keeps memory bounded without
// queueing clients behind each other.
type byteBudget struct {
	mu        sync.Mutex
	limit     int64
	used      int64
	peak      int64
	onRelease func() // test hook
}

func newByteBudget(limit int64) *byteBudget { return &byteBudget{limit: limit} }

func (b *byteBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return true
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	hook := b.onRelease
	b.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (b *byteBudget) stats() (int64, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// pooledBufferMax is the largest buffer kept for reuse; a rare huge batch must not pin its
// memory in the pool for the life of the process.
const pooledBufferMax = 1 << 20

// readChunk is how much budget a body of unknown length takes at a time.
const readChunk = 64 << 10

type bodyError struct {
	status int
	reason string
	msg    string
	err    error
}

// body is a buffered request body and the budget it holds.
type body struct {
	b        []byte
	reserved int64
}

// bodyReader reads request bodies into pooled buffers under a per-request limit and the
// shared budget.
type bodyReader struct {
	limit  int64
	budget *byteBudget
	pool   sync.Pool
}

func newBodyReader(limit int64, budget *byteBudget) *bodyReader {
	return &bodyReader{limit: limit, budget: budget, pool: sync.Pool{New: func() any { return &body{} }}}
}

func (r *bodyReader) release(b *body) {
	r.budget.release(b.reserved)
	b.reserved = 0
	if cap(b.b) <= pooledBufferMax {
		b.b = b.b[:0]
		r.pool.Put(b)
	}
}

func (r *bodyReader) tooLarge(n string) *bodyError {
	return &bodyError{status: http.StatusRequestEntityTooLarge, reason: "too_large",
		msg: "request body " + n + "exceeds the limit of " + strconv.FormatInt(r.limit, 10) + " bytes"}
}

var errBusy = errors.New("request body budget exhausted")

func busy() *bodyError {
	return &bodyError{status: http.StatusServiceUnavailable, reason: "busy", err: errBusy,
		msg: "too many request bodies are being buffered at once; retry shortly"}
}

// reserve takes n more bytes of budget for b.
func (r *bodyReader) reserve(b *body, n int64) bool {
	if !r.budget.tryAcquire(n) {
		return false
	}
	b.reserved += n
	return true
}

// read returns the whole body. The length is checked against the limit before anything is
// buffered, and the buffered bytes are reserved from the budget before they are read (for a
// body of unknown length, chunk by chunk). A server that does not stream request bodies has
// already buffered it; then only the budget for holding it while the store runs is taken.
func (r *bodyReader) read(rc requestBody) (*body, *bodyError) {
	cl := rc.ContentLength()
	if int64(cl) > r.limit {
		return nil, r.tooLarge("of " + strconv.Itoa(cl) + " bytes ")
	}
	b := r.pool.Get().(*body)
	stream := rc.BodyStream()
	if stream == nil {
		raw := rc.Body()
		if int64(len(raw)) > r.limit {
			r.release(b)
			return nil, r.tooLarge("of " + strconv.Itoa(len(raw)) + " bytes ")
		}
		if !r.reserve(b, int64(len(raw))) {
			r.release(b)
			return nil, busy()
		}
		b.b = append(b.b[:0], raw...)
		return b, nil
	}
	if cl >= 0 {
		if !r.reserve(b, int64(cl)) {
			r.release(b)
			return nil, busy()
		}
		if cap(b.b) < cl {
			b.b = make([]byte, 0, cl)
		}
	}
	n, err := r.readStream(b, stream, cl)
	if err != nil {
		r.release(b)
		return nil, err
	}
	// fasthttp's stream reports a plain EOF when the client stops short of its
	// Content-Length; a truncated batch must not reach the store as if it were whole.
	if cl >= 0 && n != int64(cl) {
		r.release(b)
		return nil, clientBodyError(fmt.Errorf("body ended after %d of %d bytes: %w", n, cl, io.ErrUnexpectedEOF))
	}
	return b, nil
}

// readStream reads until EOF, one past the limit at most, reserving budget ahead of growth
// when the length is unknown.
func (r *bodyReader) readStream(b *body, stream io.Reader, cl int) (int64, *bodyError) {
	b.b = b.b[:0]
	for {
		if len(b.b) == cap(b.b) {
			if cl >= 0 {
				// Full at the announced length: read one more byte to see EOF (or excess).
				var one [1]byte
				n, err := stream.Read(one[:])
				if n > 0 {
					return 0, r.tooLarge("")
				}
				if err == io.EOF || err == nil {
					return int64(len(b.b)), nil
				}
				return 0, clientBodyError(err)
			}
			grow := int64(max(readChunk, cap(b.b)))
			if int64(len(b.b))+grow > r.limit+1 {
				grow = r.limit + 1 - int64(len(b.b))
			}
			if grow <= 0 {
				return 0, r.tooLarge("")
			}
			if !r.reserve(b, grow) {
				return 0, busy()
			}
			nb := make([]byte, len(b.b), len(b.b)+int(grow))
			copy(nb, b.b)
			b.b = nb
		}
		n, err := stream.Read(b.b[len(b.b):cap(b.b)])
		b.b = b.b[:len(b.b)+n]
		if int64(len(b.b)) > r.limit {
			return 0, r.tooLarge("")
		}
		if err == io.EOF {
			return int64(len(b.b)), nil
		}
		if err != nil {
			return 0, clientBodyError(err)
		}
	}
}

// clientBodyError classifies a failure reading the client's body: a timeout is 408,
// anything else (truncated or badly framed body) is the client's fault, 400.
func clientBodyError(err error) *bodyError {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &bodyError{status: http.StatusRequestTimeout, reason: "invalid_body", msg: "timed out reading the request body", err: err}
	}
	return &bodyError{status: http.StatusBadRequest, reason: "invalid_body", msg: "could not read the request body: " + err.Error(), err: err}
}

// requestBody is the part of a fasthttp request the reader needs.
type requestBody interface {
	ContentLength() int    // -1 chunked, -2 until close
	BodyStream() io.Reader // nil when the server buffered the body itself
	Body() []byte
}

type ctxBody struct{ rc *fasthttp.RequestCtx }

func (c ctxBody) ContentLength() int    { return c.rc.Request.Header.ContentLength() }
func (c ctxBody) BodyStream() io.Reader { return c.rc.RequestBodyStream() }
func (c ctxBody) Body() []byte          { return c.rc.Request.Body() }

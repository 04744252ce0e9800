package eventstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/floodgate-dev/floodgate/filters"
)

// pooledBufferMax is the largest buffer kept for reuse; a rare huge batch
// must not pin its memory in the pool for the life of the process.
const pooledBufferMax = 1 << 20

// bodyError says why the body could not be read: the status, category and
// message for the client.
type bodyError struct {
	status   int
	category filters.Category
	msg      string
	err      error
}

// bodyReader reads request bodies into pooled buffers under a hard limit.
type bodyReader struct {
	limit int64
	pool  sync.Pool
}

func newBodyReader(limit int64) *bodyReader {
	return &bodyReader{limit: limit, pool: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

func (r *bodyReader) release(b *bytes.Buffer) {
	if b.Cap() <= pooledBufferMax {
		b.Reset()
		r.pool.Put(b)
	}
}

func (r *bodyReader) tooLarge(n string) *bodyError {
	return &bodyError{
		status:   http.StatusRequestEntityTooLarge,
		category: filters.CategoryRequestTooLarge,
		msg:      "request body " + n + "exceeds the limit of " + strconv.FormatInt(r.limit, 10) + " bytes",
	}
}

// read returns the whole body of c's request. The gateway streams request
// bodies (fasthttp does not enforce a size limit then), so the limit is
// enforced here; a server without streaming leaves the body in memory,
// which is used as is. The caller releases the buffer once the store has
// answered (the store does not keep the body).
func (r *bodyReader) read(c *filters.Context) (*bytes.Buffer, *bodyError) {
	in := &c.Request.Request
	cl := in.Header.ContentLength()
	if int64(cl) > r.limit {
		return nil, r.tooLarge("of " + strconv.Itoa(cl) + " bytes ")
	}
	buf := r.pool.Get().(*bytes.Buffer)
	stream := c.Request.RequestBodyStream()
	if stream == nil {
		// Body() would drain a stream into memory unbounded; it is only
		// safe here, where there is no stream.
		b := in.Body()
		if int64(len(b)) > r.limit {
			r.release(buf)
			return nil, r.tooLarge("of " + strconv.Itoa(len(b)) + " bytes ")
		}
		buf.Write(b)
		return buf, nil
	}
	if cl > 0 {
		buf.Grow(cl)
	}
	// One byte past the limit tells "exactly at the limit" from "over".
	n, err := buf.ReadFrom(io.LimitReader(stream, r.limit+1))
	if err != nil {
		r.release(buf)
		return nil, clientBodyError(err)
	}
	if n > r.limit {
		r.release(buf)
		return nil, r.tooLarge("")
	}
	// fasthttp's stream reports a plain EOF when the client stops short of
	// its Content-Length; a truncated batch must not reach the store as if
	// it were whole.
	if cl >= 0 && n != int64(cl) {
		r.release(buf)
		return nil, clientBodyError(fmt.Errorf("body ended after %d of %d bytes: %w", n, cl, io.ErrUnexpectedEOF))
	}
	return buf, nil
}

// clientBodyError classifies a failure reading the client's body the way
// the proxy endpoint does: a timeout is 408, anything else (truncated or
// badly framed body) is the client's fault, 400.
func clientBodyError(err error) *bodyError {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &bodyError{status: http.StatusRequestTimeout, category: filters.CategoryClientTimeout,
			msg: "timed out reading the request body", err: err}
	}
	return &bodyError{status: http.StatusBadRequest, category: filters.CategoryClientError,
		msg: "could not read the request body: " + err.Error(), err: err}
}

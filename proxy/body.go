package proxy

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
)

// errBodyTooLarge is returned by requestBody once the client has sent more
// than the configured limit.
var errBodyTooLarge = errors.New("request body exceeds server.max_body_size")

// replayLimit bounds how much of a streamed request body is remembered so
// the request can be re-sent after a stale pooled connection. A stale
// connection is detected at the first write, by which point at most one
// client write buffer of body has been consumed, so this is plenty.
const replayLimit = 64 << 10

// requestBody streams a client's request body to the origin. It enforces
// the size limit itself, because fasthttp does not when request streaming
// is on, and remembers the first bytes so a send that failed before
// reaching the origin can be replayed.
type requestBody struct {
	src    io.Reader
	limit  int64
	n      int64
	prefix []byte
	// replay is set when re-sending: those bytes come first.
	replay     []byte
	replayable bool
	// clientErr is the error reading from the client, as opposed to
	// writing to the origin; it decides between a 4xx and a 5xx.
	clientErr error
	// wire bounds a chunked body's framing against its data (nil for a
	// body of known length).
	wire *wireLimiter
	// declared is the Content-Length the client announced, or -1: an end
	// of stream before it means the client went away mid-upload.
	declared int64
}

var requestBodyPool = sync.Pool{New: func() any { return &requestBody{} }}

func acquireRequestBody(src io.Reader, limit int64) *requestBody {
	b := requestBodyPool.Get().(*requestBody)
	b.src, b.limit, b.replayable, b.declared = src, limit, true, -1
	return b
}

func releaseRequestBody(b *requestBody) {
	if cap(b.prefix) > replayLimit {
		b.prefix = nil
	}
	*b = requestBody{prefix: b.prefix[:0]}
	requestBodyPool.Put(b)
}

func (b *requestBody) Read(p []byte) (int, error) {
	if len(b.replay) > 0 {
		n := copy(p, b.replay)
		b.replay = b.replay[n:]
		return n, nil
	}
	n, err := b.src.Read(p)
	if n > 0 {
		b.n += int64(n)
		b.wire.update(b.n)
		if b.n > b.limit {
			b.clientErr = errBodyTooLarge
			return 0, errBodyTooLarge
		}
		if b.replayable {
			if len(b.prefix)+n <= replayLimit {
				b.prefix = append(b.prefix, p[:n]...)
			} else {
				b.replayable = false
			}
		}
	}
	if err == io.EOF && b.declared >= 0 && b.n < b.declared {
		// fasthttp reports a closed client connection as a plain end of
		// the body; short of the announced length it is the client's
		// failure, not the origin's.
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.clientErr = err
	}
	return n, err
}

// rewind prepares the body to be sent again from the start; false if more
// was consumed than was remembered.
func (b *requestBody) rewind() bool {
	if !b.replayable || b.clientErr != nil {
		return false
	}
	b.replay = b.prefix
	return true
}

// responseBody streams an origin's response body to the client. fasthttp
// closes it after writing the response (or when the client goes away),
// which is when the request is complete: it then returns the origin
// connection to its pool and releases the request's Context.
type responseBody struct {
	src io.Reader
	// head is the start of the body, read before the status line was
	// sent (see readHead); it goes out first. headBuf is its pooled
	// buffer.
	head    []byte
	headBuf *[]byte
	resp    *fasthttp.Response
	c       *filters.Context
	n       int64
	// onError classifies a failure reading from the origin mid-body.
	onError func(c *filters.Context, err error)
	// done reports the attempt to its instance once the body is complete,
	// so the instance counts as busy while it streams; latency is the time
	// to the response headers, which is what load balancing compares.
	done    attemptEnd
	latency time.Duration
	status  int
	readErr error
	once    sync.Once
}

func (b *responseBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		b.n += int64(n)
		return n, nil
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.readErr = err
		if b.onError != nil {
			b.onError(b.c, err)
		}
	}
	return n, err
}

// CloseWithError is called by fasthttp with the error writing to the
// client, if any.
func (b *responseBody) CloseWithError(writeErr error) error {
	b.once.Do(func() {
		c := b.c
		c.BytesOut = b.n
		if writeErr != nil && c.Err == nil {
			c.Err = writeErr
			c.Log("client write failed: " + writeErr.Error())
			if c.Category == filters.CategorySuccess {
				c.Category = filters.CategoryClientClosed
			}
		}
		// Closing a partly read body discards the origin connection
		// instead of pooling it mid-response.
		_ = b.resp.CloseBodyStream()
		fasthttp.ReleaseResponse(b.resp)
		outcome := origins.OutcomeForStatus(b.status)
		if b.readErr != nil {
			outcome = origins.OutcomeReset
		}
		b.done.Done(origins.Result{Latency: b.latency, Outcome: outcome, Status: b.status})
		b.done = attemptEnd{}
		if b.headBuf != nil {
			headBufPool.Put(b.headBuf)
		}
		b.resp, b.src, b.c, b.head, b.headBuf = nil, nil, nil, nil, nil
		c.Release()
	})
	return nil
}

// attemptEnd is where a response handed to the client reports its
// attempt's end: the attempt's Ticket (reported once, see origins.Ticket)
// and, for a declined WebSocket handshake, the connection to close after
// the final report. The zero attemptEnd reports nothing.
type attemptEnd struct {
	ticket origins.Ticket
	after  func() // nil, or run after the final report
}

// Done reports r through the Ticket, then runs after once r is final.
func (a attemptEnd) Done(r origins.Result) {
	a.ticket.Done(r)
	if !r.HeadersOnly && a.after != nil {
		a.after()
	}
}

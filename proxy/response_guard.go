package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
)

// An origin's answer is checked before the gateway commits to it: once the
// status line has gone to the client, a failure can only cut the
// connection. Until then it can still become a clean 502 or 504 with a
// category.

// headBufSize is how much of a response body is read before the status
// line is sent: all of a body announced at most this long (so a short
// body is caught), otherwise at least one byte.
const headBufSize = 16 << 10

var headBufPool = sync.Pool{New: func() any { b := make([]byte, headBufSize); return &b }}

// errUnsolicitedUpgrade is an origin's 101 to a request that asked for no
// upgrade (the gateway strips Upgrade, so every 101 is one).
var errUnsolicitedUpgrade = errors.New("origin switched protocols without being asked (101)")

// errShortBody is a body that ended before its announced length.
var errShortBody = errors.New("origin closed the response before its announced length")

// readHead reads the start of a streamed body into buf: the whole body if
// its announced size fits, otherwise at least one byte. A body of unknown
// length (chunked, or delimited by close) that is empty is not an error.
func readHead(stream io.Reader, size int, buf []byte) (int, error) {
	if size >= 0 && size <= len(buf) {
		n, err := io.ReadFull(stream, buf[:size])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, errShortBody
		}
		return n, err
	}
	n, err := io.ReadAtLeast(stream, buf, 1)
	switch {
	case err == io.EOF && size < 0:
		return 0, nil // an empty chunked or close-delimited body
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return n, errShortBody
	}
	return n, err
}

// refuseResponse turns an origin answer the client must not get into a
// 502/504: the instance is charged with the failure, the attempt's outcome
// in the request's story is corrected, and the connection is not pooled.
func (e *forwardEndpoint) refuseResponse(c *filters.Context, resp *fasthttp.Response, done attemptEnd, latency time.Duration, err error) {
	status, cat := http.StatusBadGateway, filters.CategoryOriginBadResponse
	if !errors.Is(err, errUnsolicitedUpgrade) {
		status, cat = classifyOriginError(err)
		if errors.Is(err, errShortBody) {
			status, cat = http.StatusBadGateway, filters.CategoryOriginReset
		}
	}
	outcome := outcomeOf(cat)
	code := resp.StatusCode()
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
	done.Done(origins.Result{Latency: latency, Outcome: outcome, Status: code})
	if n := len(c.Attempts); n > 0 {
		c.Attempts[n-1].Outcome = outcome.String()
	}
	fe := filters.Fail(status, cat, originErrorReason(cat, c.Origin), err)
	c.Log("origin answer refused before the first byte: " + err.Error())
	c.Err = fe
	c.Respond(fe.Status, fe.Category, fe.Reason)
}

// closeIdleUpgraded drops the idle connections of the instance that sent
// an unsolicited 101: fasthttp pooled that connection (a 101 has no body),
// but it now speaks another protocol and must never carry a request.
func (e *forwardEndpoint) closeIdleUpgraded(origin, instance string) {
	o, ok := e.reg.Get(origin)
	if !ok || instance == "" {
		return
	}
	k := e.poolKeyFor(o.ConfigRef())
	k.addr = instance
	e.pool.get(k).CloseIdleConnections()
}

package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
)

// bufferedBodyLimit is the largest request body read whole before
// forwarding. Small bodies are buffered so fasthttp can retry them on a
// fresh connection; larger ones stream with bounded memory.
const bufferedBodyLimit = 64 << 10

// upstreamInstance is one origin address with its connection pool.
type upstreamInstance struct {
	addr   string
	client *fasthttp.HostClient
}

// forwardEndpoint proxies a route's requests to its origin.
type forwardEndpoint struct {
	route     string
	origin    string
	instances []upstreamInstance
	next      atomic.Uint64
	hostOver  string
	via       string
	trusted   []netip.Prefix
	maxBody   int64
	observe   func(origin string, a filters.Attempt)
}

var _ filters.Filter = (*forwardEndpoint)(nil)

func (e *forwardEndpoint) Name() string                       { return "proxy" }
func (e *forwardEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (e *forwardEndpoint) Order() int                         { return 0 }
func (e *forwardEndpoint) ShouldFilter(*filters.Context) bool { return true }
func (e *forwardEndpoint) pick() upstreamInstance {
	// Round robin is the placeholder picker until origins provides
	// power-of-two-choices.
	return e.instances[(e.next.Add(1)-1)%uint64(len(e.instances))]
}

func (e *forwardEndpoint) isTrusted(ip netip.Addr) bool {
	for _, p := range e.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (e *forwardEndpoint) Apply(c *filters.Context) error {
	ctx := c.Request
	in := &ctx.Request
	c.Origin = e.origin

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	e.buildRequest(c, req)

	var body *requestBody
	if err := e.attachBody(c, req, &body); err != nil {
		return err
	}
	if body != nil {
		defer releaseRequestBody(body)
	}

	resp := fasthttp.AcquireResponse()
	inst := e.pick()
	c.Instance = inst.addr
	start := time.Now()
	err := inst.client.Do(req, resp)
	// A streamed body cannot be retried by fasthttp; on a stale pooled
	// connection nothing reached the origin, so replay it ourselves.
	for tries := 0; err != nil && body != nil && errors.Is(err, errStaleConn) && tries < 3 && body.rewind(); tries++ {
		c.Log("stale pooled connection, resending")
		req.SetBodyStream(body, in.Header.ContentLength())
		err = inst.client.Do(req, resp)
	}
	attempt := filters.Attempt{Instance: inst.addr, Start: start, Duration: time.Since(start)}
	if body != nil {
		c.BytesIn = body.n
	}
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		if body != nil && body.clientErr != nil {
			attempt.Outcome = "client_error"
			c.Attempts = append(c.Attempts, attempt)
			return clientBodyError(body.clientErr)
		}
		status, cat := classifyOriginError(err)
		attempt.Outcome = string(cat)
		e.record(c, attempt)
		return filters.Fail(status, cat, originErrorReason(cat, e.origin), err)
	}
	attempt.Status = resp.StatusCode()
	attempt.Outcome = "response"
	e.record(c, attempt)
	e.writeResponse(c, resp)
	return nil
}

func (e *forwardEndpoint) record(c *filters.Context, a filters.Attempt) {
	c.Attempts = append(c.Attempts, a)
	if e.observe != nil {
		e.observe(e.origin, a)
	}
}

// buildRequest copies the client's request to req: method, the normalized
// and rewritten path with the raw query, headers verbatim (case, order and
// duplicates kept) minus hop-by-hop ones, plus X-Forwarded-* and Via.
// Headers are added one by one rather than copied and then deleted because
// fasthttp's delete reorders the remaining headers.
func (e *forwardEndpoint) buildRequest(c *filters.Context, req *fasthttp.Request) {
	in := &c.Request.Request
	req.Header.DisableNormalizing()
	req.Header.SetMethodBytes(in.Header.Method())
	copyEndToEnd(in.Header.All(), req.Header.AddBytesKV, isGatewayOwnedRequestHeader)

	uri := make([]byte, 0, len(c.UpstreamPath)+64)
	uri = append(uri, c.UpstreamPath...)
	if q := in.URI().QueryString(); len(q) > 0 {
		uri = append(uri, '?')
		uri = append(uri, q...)
	}
	req.Header.SetRequestURIBytes(uri)
	req.URI().DisablePathNormalizing = true
	req.SetRequestURIBytes(uri)
	host := in.Header.Host()
	if e.hostOver != "" {
		req.Header.SetHost(e.hostOver)
	} else {
		req.Header.SetHostBytes(host)
	}
	var scratch [4][]byte
	setForwarded(&req.Header, &in.Header, c.ClientIP, e.isTrusted(c.ClientIP), "http", string(host), e.via, scratch[:0])
	if c.RequestID != "" {
		req.Header.Set("X-Request-Id", c.RequestID)
	}
}

// isGatewayOwnedRequestHeader reports headers the forwarder sets itself
// instead of copying: framing (re-derived from the body), Host, Expect (the
// gateway answered 100-continue itself) and the forwarding headers
// setForwarded rebuilds.
func isGatewayOwnedRequestHeader(k []byte) bool {
	for _, n := range requestOwnHeaders {
		if bytes.EqualFold(k, []byte(n)) {
			return true
		}
	}
	return false
}

func isContentLength(k []byte) bool { return bytes.EqualFold(k, []byte("Content-Length")) }

var requestOwnHeaders = []string{"Host", "Content-Length", "Expect", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Via"}

// attachBody gives req the client's body: small known-length bodies
// buffered (so they are retryable), everything else streamed.
func (e *forwardEndpoint) attachBody(c *filters.Context, req *fasthttp.Request, out **requestBody) error {
	in := &c.Request.Request
	cl := in.Header.ContentLength()
	if cl == 0 || cl == -2 {
		req.Header.SetContentLength(0)
		req.ResetBody()
		return nil
	}
	if int64(cl) > e.maxBody {
		return filters.Fail(http.StatusRequestEntityTooLarge, filters.CategoryRequestTooLarge,
			"request body of "+strconv.Itoa(cl)+" bytes exceeds the limit of "+strconv.FormatInt(e.maxBody, 10), nil)
	}
	stream := c.Request.RequestBodyStream()
	if stream == nil {
		req.SetBody(in.Body())
		c.BytesIn = int64(len(in.Body()))
		return nil
	}
	if cl > 0 && cl <= bufferedBodyLimit {
		buf := req.BodyWriter()
		n, err := io.CopyN(buf, stream, int64(cl))
		c.BytesIn = n
		if err != nil {
			return clientBodyError(err)
		}
		return nil
	}
	b := acquireRequestBody(stream, e.maxBody)
	*out = b
	req.SetBodyStream(b, cl)
	return nil
}

// writeResponse hands the origin's response to the client: status and
// headers (minus hop-by-hop), and the body as a stream so neither a large
// download nor an event stream is buffered.
func (e *forwardEndpoint) writeResponse(c *filters.Context, resp *fasthttp.Response) {
	out := &c.Request.Response
	status := resp.StatusCode()
	out.SetStatusCode(status)
	out.Header.DisableNormalizing()
	copyEndToEnd(resp.Header.All(), out.Header.AddBytesKV, isContentLength)
	out.Header.Add("Via", "1.1 "+e.via)

	cat := filters.CategorySuccess
	switch {
	case status >= 500:
		cat = filters.CategoryOrigin5xx
	}
	c.MarkResponded(status, cat)

	stream := resp.BodyStream()
	if stream == nil {
		// HEAD, 204, 304 and 1xx have no body; a HEAD response keeps the
		// length the origin announced.
		if cl := resp.Header.ContentLength(); cl >= 0 && status != 204 && status != 304 {
			out.Header.SetContentLength(cl)
		}
		fasthttp.ReleaseResponse(resp)
		return
	}
	size := resp.Header.ContentLength()
	if size < 0 {
		size = -1 // chunked, or delimited by close: re-frame as chunked
	}
	c.Retain()
	out.SetBodyStream(&responseBody{src: stream, resp: resp, c: c, onError: midBodyError}, size)
}

// midBodyError records an origin failure after the status line was sent:
// the client sees a truncated body, the log sees why.
func midBodyError(c *filters.Context, err error) {
	if c.Err == nil {
		c.Err = err
		_, cat := classifyOriginError(err)
		c.Category = cat
		c.Log("origin failed mid-body: " + err.Error())
	}
}

// classifyOriginError maps a failed exchange with an origin to an HTTP
// status and category.
func classifyOriginError(err error) (int, filters.Category) {
	var de *dialError
	var ne net.Error
	switch {
	case errors.As(err, &de):
		return http.StatusBadGateway, filters.CategoryOriginConnectError
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return http.StatusServiceUnavailable, filters.CategoryOriginConcurrency
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, fasthttp.ErrTimeout),
		errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, filters.CategoryOriginTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		errors.Is(err, errStaleConn):
		return http.StatusBadGateway, filters.CategoryOriginReset
	}
	return http.StatusBadGateway, filters.CategoryOriginBadResponse
}

func originErrorReason(cat filters.Category, origin string) string {
	switch cat {
	case filters.CategoryOriginConnectError:
		return "cannot connect to origin " + origin
	case filters.CategoryOriginTimeout:
		return "origin " + origin + " timed out"
	case filters.CategoryOriginReset:
		return "origin " + origin + " closed the connection"
	case filters.CategoryOriginConcurrency:
		return "origin " + origin + " is at its connection limit"
	}
	return "origin " + origin + " sent an invalid response"
}

// clientBodyError maps a failure reading the client's body.
func clientBodyError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errBodyTooLarge):
		return filters.Fail(http.StatusRequestEntityTooLarge, filters.CategoryRequestTooLarge, "request body too large", err)
	case errors.As(err, &ne) && ne.Timeout():
		return filters.Fail(http.StatusRequestTimeout, filters.CategoryClientTimeout, "timed out reading the request body", err)
	}
	return filters.Fail(http.StatusBadRequest, filters.CategoryClientError, "could not read the request body", err)
}

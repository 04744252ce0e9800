package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/proxy/edge"
	"github.com/floodgate-dev/floodgate/shadow"
)

// bufferedBodyLimit is the largest request body read whole before
// forwarding. Small bodies are buffered so fasthttp can retry them on a
// fresh connection; larger ones stream with bounded memory.
const bufferedBodyLimit = edge.BufferedBodyLimit

// forwardEndpoint proxies a route's requests to its origin, or to the
// active origin of its origin group: it picks an instance (power of two
// choices), sends the request, retries on another instance within the
// origin's retry budget (or on the group's next origin), hedges idempotent
// requests, and streams the response back.
type forwardEndpoint struct {
	filters.Base
	route      string
	origin     string               // "" for a group route
	group      *origins.GroupConfig // nil for an origin route
	originCfg  origins.OriginConfig // as of the snapshot, for the admin view
	reg        *origins.Registry
	pool       *clientPool
	timeouts   origins.TimeoutsConfig // the route's overrides; zero fields use the origin's
	idempotent bool                   // the route declares every method safe to repeat
	hostOver   string
	via        string
	viaHop     string // "1.1 " + via, the Via entry added to responses
	maxBody    int64
	observer   AttemptObserver // nil: not observed

	// WebSocket tunnels (tunnel.go): where they register, their bounds
	// (server.tunnel as of the snapshot) and the route's counters.
	websocket     bool // routes[].websocket, for the admin view (Dispatch enforces it)
	tunnels       *tunnelSet
	tunnelLimits  tunnelLimits
	tunnelMetrics tunnelMetrics
	logger        *slog.Logger

	shadow *shadowing // nil: the route does not shadow
}

// poolKeyFor returns the connection pool settings for this route on
// origin configuration oc, without the instance address.
func (e *forwardEndpoint) poolKeyFor(oc *origins.OriginConfig) poolKey {
	t := oc.Timeouts.Override(e.timeouts)
	return poolKey{connect: t.Connect, response: t.Response, idle: oc.IdleConnTimeout, maxConns: oc.MaxConnsPerInstance, tls: oc.TLS}
}

func (e *forwardEndpoint) Apply(c *filters.Context) error {
	o, cross, fallback, err := e.target()
	if err != nil {
		return err
	}
	c.Origin = o.Name()
	oc := o.ConfigRef()
	// The shadow mark is the gateway's to set: a client sending it must
	// not pass its request (or a tunnel's handshake) off as mirrored
	// traffic.
	c.DropUpstreamHeader(shadow.Header)
	if isUpgradeRequest(&c.Request.Request.Header) {
		// Dispatch let through only a WebSocket handshake.
		return e.applyUpgrade(c, o, oc, fallback)
	}
	key := e.poolKeyFor(oc)

	var body *requestBody
	req := &c.Request.Request
	if !e.forwardInPlace(c) {
		req = fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		e.buildRequest(c, req)
		var whole *pooledBody
		err := e.attachBody(c, req, &body, &whole)
		if whole != nil {
			// After the exchange: nothing sends req again once Do has
			// returned (a hedged attempt sends its own copy).
			defer whole.release()
		}
		if err != nil {
			return err
		}
		if body != nil {
			defer releaseRequestBody(body)
		}
	}
	if e.shadow != nil {
		e.shadow.copyFor(c, req, body != nil)
	}
	x := acquireExchange(exchange{e: e, c: c, req: req, body: body, key: key, origin: o.Name()})
	defer x.release()
	ans, err := origins.Do(o, nil, origins.Request{Method: c.Method, RouteIdempotent: e.idempotent, Replayable: body == nil, CrossTo: cross, Fallback: fallback}, x)
	if err != nil {
		return x.failure(err)
	}
	e.writeResponse(c, ans.Response, attemptEnd{ticket: ans.Done}, ans.Latency)
	return nil
}

// outcomeOf maps a failure category to what the instance is charged with.
func outcomeOf(cat filters.Category) origins.Outcome {
	switch {
	case !cat.OriginFault():
		// Our own connection pool is full: not the instance's fault.
		return origins.OutcomeCanceled
	case cat == filters.CategoryOriginConnectError:
		return origins.OutcomeConnectError
	case cat == filters.CategoryOriginTimeout:
		return origins.OutcomeTimeout
	}
	return origins.OutcomeReset
}

// pickError maps a failed pick to a local rejection.
func pickError(origin string, err error) error {
	switch {
	case errors.Is(err, origins.ErrOriginConcurrency):
		return filters.Fail(http.StatusServiceUnavailable, filters.CategoryOriginConcurrency, "origin "+origin+" is at its concurrency limit", err)
	default:
		return filters.Fail(http.StatusServiceUnavailable, filters.CategoryNoHealthyInstances, "origin "+origin+" has no healthy instance", err)
	}
}

// target is the origin a request goes to: the route's, or its group's
// active one, with where the group sends retries and hedges (cross; nil:
// they stay in the origin) and a first attempt the active origin cannot
// place (fallback).
func (e *forwardEndpoint) target() (o *origins.Origin, cross, fallback func(*origins.Origin) *origins.Origin, err error) {
	if e.group == nil {
		o, ok := e.reg.Get(e.origin)
		if !ok {
			return nil, nil, nil, filters.Fail(http.StatusServiceUnavailable, filters.CategoryNoHealthyInstances, "origin "+e.origin+" is not available", nil)
		}
		return o, nil, nil, nil
	}
	g, ok := e.reg.Group(e.group.Name)
	if ok {
		o = g.Active()
	}
	if o == nil {
		return nil, nil, nil, filters.Fail(http.StatusServiceUnavailable, filters.CategoryNoHealthyInstances, "origin group "+e.group.Name+" has no origin available", nil)
	}
	if g.CrossOriginRetries() {
		cross = g.CrossTo
	}
	return o, cross, g.Next, nil
}

// record adds an attempt to the request's story; the origin and instance of
// the last one recorded are the ones whose answer the client gets.
func (e *forwardEndpoint) record(c *filters.Context, origin string, a filters.Attempt) {
	c.Attempts = append(c.Attempts, a)
	c.LogAttempt(a)
	c.Origin, c.Instance = origin, a.Instance
	if e.observer != nil {
		e.observer.ObserveOriginAttempt(origin, a.Instance, a.Outcome, a.Duration)
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
	// A body without Content-Type reaches the origin without one.
	req.Header.SetNoDefaultContentType(true)
	req.Header.SetMethodBytes(in.Header.Method())
	sent := copyRequestHeaders(&req.Header, &in.Header, c)

	var uriBuf [256]byte // the header copies it; longer URIs grow onto the heap
	req.SetRequestURIBytes(upstreamURI(c, uriBuf[:0]))
	host := in.Header.Host()
	if e.hostOver != "" {
		req.Header.SetHost(e.hostOver)
	} else {
		req.Header.SetHostBytes(host)
	}
	var scratch [4][]byte
	setForwarded(&req.Header, &in.Header, sent, c.PeerIP(), c.PeerTrusted(), forwardedProto(c), host, e.via, scratch[:0])
	c.UpstreamHeaders(req.Header.Set)
}

// upstreamURI appends the request target sent upstream to dst: the
// route's rewritten path and the client's raw query. It is sent as built:
// sendToOrigin never parses it back into a URI, so no path normalization
// can undo the route's.
func upstreamURI(c *filters.Context, dst []byte) []byte {
	dst = append(dst, c.UpstreamPath...)
	if q := rawQuery(c.Request.Request.Header.RequestURI()); len(q) > 0 {
		dst = append(dst, '?')
		dst = append(dst, q...)
	}
	return dst
}

// forwardInPlace turns the client's request into the upstream one when
// nothing in it has to be removed, and reports whether it did: no body, a
// keep-alive HTTP/1.1 request, and no header that is hop-by-hop (a
// Connection header other than "keep-alive" included), set by the gateway
// (X-Forwarded-*, Via, Expect, ...) or dropped or set by a filter. Then the upstream request
// is the client's with the target rewritten and headers only added, which
// is what buildRequest would produce, without copying every header into a
// new request (each copy is validated again by fasthttp). Anything else
// takes buildRequest. After the exchange the client's request carries the
// upstream target and the forwarding headers; nothing reads it then but
// the log, which uses the Context's copies.
func (e *forwardEndpoint) forwardInPlace(c *filters.Context) bool {
	in := &c.Request.Request
	h := &in.Header
	if h.ContentLength() != -2 || in.IsBodyStream() || len(in.Body()) > 0 || h.ConnectionClose() || !h.IsHTTP11() {
		return false
	}
	for k, v := range h.All() {
		role := headerRoleOf(k)
		if role&roleHopByHop != 0 && isKeepAliveOnly(k, v) {
			continue
		}
		if role&roleHopByHop != 0 || role&roleRequestOwned != 0 && !bytes.EqualFold(k, []byte("Host")) || c.UpstreamOwns(k) {
			return false
		}
	}
	var uriBuf [256]byte
	uri := upstreamURI(c, uriBuf[:0])
	h.DisableNormalizing()
	h.SetNoDefaultContentType(true)
	// The forwarding headers name the client's Host, so they are written
	// before a host override replaces it.
	var scratch [4][]byte
	setForwarded(h, h, 0, c.PeerIP(), c.PeerTrusted(), forwardedProto(c), h.Host(), e.via, scratch[:0])
	if e.hostOver != "" {
		h.SetHost(e.hostOver)
	}
	in.SetRequestURIBytes(uri)
	c.UpstreamHeaders(h.Set)
	return true
}

// isKeepAliveOnly reports a "Connection: keep-alive" header, which browsers
// and most HTTP libraries send on every HTTP/1.1 request. It names no other
// header to remove, and keep-alive is the gateway's own option for the
// upstream hop too, so forwarding it as is is what RFC 9110 (section 7.6.1)
// allows: the intermediary replacing the client's connection options with
// its own. Any other Connection value, or a Keep-Alive header, still takes
// the copy, which drops them (deleting a header in place would reorder the
// others: fasthttp moves the last header into the gap).
func isKeepAliveOnly(name, value []byte) bool {
	return bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(bytes.TrimSpace(value), []byte("keep-alive"))
}

// requestOwnHeaders are the headers the forwarder sets itself instead of
// copying: framing (re-derived from the body), Host, Expect (the gateway
// answered 100-continue itself) and the forwarding headers setForwarded
// rebuilds.
var requestOwnHeaders = []string{"Host", "Content-Length", "Expect", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Real-IP", "Via"}

// attachBody gives req the client's body: small known-length bodies
// buffered (so they are retryable; in a pooled buffer, *whole, which the
// caller releases after the exchange, for the reason body_pool.go gives),
// everything else streamed (*out).
func (e *forwardEndpoint) attachBody(c *filters.Context, req *fasthttp.Request, out **requestBody, whole **pooledBody) error {
	in := &c.Request.Request
	cl := in.Header.ContentLength()
	if cl == -2 {
		// No body and no framing header: forward none (a GET does not
		// grow a "Content-Length: 0"; fasthttp frames a bodiless POST).
		req.ResetBody()
		return nil
	}
	if cl == 0 {
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
		pb := acquirePooledBody(cl)
		*whole = pb
		n, err := io.ReadFull(stream, pb.buf)
		c.BytesIn = int64(n)
		if err != nil {
			return clientBodyError(err)
		}
		req.SetBodyRaw(pb.buf)
		return nil
	}
	b := acquireRequestBody(stream, e.maxBody)
	b.wire = newWireLimiter(c.Request)
	if cl >= 0 {
		b.declared = int64(cl)
	}
	*out = b
	req.SetBodyStream(b, cl)
	return nil
}

// writeResponse hands the origin's response to the client: status and
// headers (minus hop-by-hop), a small body of known length whole, and any
// other body as a stream so neither a large download nor an event stream is
// buffered.
func (e *forwardEndpoint) writeResponse(c *filters.Context, resp *fasthttp.Response, done attemptEnd, latency time.Duration) {
	out := &c.Request.Response
	status := resp.StatusCode()
	if status == http.StatusSwitchingProtocols {
		e.refuseResponse(c, resp, done, latency, errUnsolicitedUpgrade)
		e.closeIdleUpgraded(c.Origin, c.Instance)
		return
	}
	var head []byte
	var headBuf *[]byte
	// A streamed body's start is read before anything is committed, so a
	// failure before its first byte is still a clean 502/504. (A body of
	// known length up to bufferedBodyLimit arrives whole: the origin
	// transport read it before the attempt counted as answered.)
	stream := resp.BodyStream()
	whole, _ := stream.(*pooledBody)
	if whole != nil {
		stream = nil
	}
	if stream != nil {
		headBuf = headBufPool.Get().(*[]byte)
		n, err := readHead(stream, resp.Header.ContentLength(), *headBuf)
		if err != nil {
			headBufPool.Put(headBuf)
			e.refuseResponse(c, resp, done, latency, err)
			return
		}
		head = (*headBuf)[:n]
	}
	forwardResponseHead(out, resp, c, true)
	c.OwnedHeadersSkipped()
	out.Header.Add("Via", e.viaHop)

	cat := filters.CategorySuccess
	switch {
	case status >= 500:
		cat = filters.CategoryOrigin5xx
	}
	c.MarkResponded(status, cat)

	if stream == nil {
		if c.Method == fasthttp.MethodHead || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
			// No body; a HEAD response keeps the length the origin
			// announced.
			if cl := resp.Header.ContentLength(); cl >= 0 && status != fasthttp.StatusNoContent && status != fasthttp.StatusNotModified {
				out.Header.SetContentLength(cl)
			}
		} else if whole != nil {
			// The whole body is here and the origin connection is back in
			// its pool: lend the buffer to the client's response rather
			// than copy it; it returns to its pool once written.
			c.BytesOut = int64(lendBody(c.Request, whole))
		} else if len(resp.Body()) > 0 {
			// A body the origin transport did not read (an answer read by
			// fasthttp itself, such as a declined WebSocket handshake's):
			// hand its buffer over without a copy.
			body := resp.SwapBody(nil)
			resp.SwapBody(out.SwapBody(body))
			c.BytesOut = int64(len(body))
		}
		fasthttp.ReleaseResponse(resp)
		done.Done(origins.Result{Latency: latency, Outcome: origins.OutcomeForStatus(status), Status: status})
		return
	}
	// Headers are here: the origin's part (its time to headers) is done,
	// whatever the client's download costs from now on.
	done.Done(origins.Result{Latency: latency, Outcome: origins.OutcomeForStatus(status), Status: status, HeadersOnly: true})
	size := resp.Header.ContentLength()
	if size < 0 {
		size = -1 // chunked, or delimited by close: re-frame as chunked
	}
	c.Retain()
	out.SetBodyStream(&responseBody{src: stream, head: head, headBuf: headBuf, resp: resp, c: c, onError: midBodyError, done: done, latency: latency, status: status}, size)
}

// forwardResponseHead gives out the origin's status line and headers as
// sent: its reason phrase, no default Content-Type for an answer that has
// none, none of the gateway's own response headers from the origin (they
// would appear twice), nothing hop-by-hop. whole allows the wholesale copy
// where it applies (always, but for the test that pins both ways to the
// same bytes).
func forwardResponseHead(out, resp *fasthttp.Response, c *filters.Context, whole bool) {
	resp.Header.SetNoDefaultContentType(true)
	if whole && copyResponseHeadersWhole(&out.Header, &resp.Header, c) {
		return
	}
	out.SetStatusCode(resp.StatusCode())
	out.Header.SetStatusMessage(resp.Header.StatusMessage())
	out.Header.DisableNormalizing()
	copyResponseHeaders(&out.Header, &resp.Header, c)
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
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		// Nobody will read this answer; the category tells the log why.
		return filters.Fail(http.StatusBadRequest, filters.CategoryClientClosed, "the client closed the connection during the upload", err)
	case errors.Is(err, edge.ErrReadLimit):
		return filters.Fail(http.StatusBadRequest, filters.CategoryClientError, "chunked body framing (chunk extensions) far exceeds its data", err)
	case errors.As(err, &ne) && ne.Timeout():
		return filters.Fail(http.StatusRequestTimeout, filters.CategoryClientTimeout, "timed out reading the request body", err)
	}
	return filters.Fail(http.StatusBadRequest, filters.CategoryClientError, "could not read the request body", err)
}

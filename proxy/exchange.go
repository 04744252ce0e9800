package proxy

import (
	"errors"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/racebuild"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// exchange is one request's HTTP traffic to its origin: the HTTP work of
// the attempt loop (origins.Do), which decides where attempts go, retries
// and hedges.
type exchange struct {
	e    *forwardEndpoint
	c    *filters.Context
	req  *fasthttp.Request
	body *requestBody // nil unless the body streams
	key  poolKey
	// origin is the request's origin (a group's active one when sent); key
	// is for its instances.
	origin string
	// forked: a hedged run forked attempts, which may still use the
	// exchange after origins.Do returned, so it is not pooled.
	forked bool
}

// exchangePool keeps exchanges of sequential runs: origins.Do takes an
// interface, so each would otherwise be allocated.
var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

// acquireExchange returns a pooled exchange set to x. Its owner, the
// request's forwarder, releases it once origins.Do has returned and the
// failure (if any) is mapped.
func acquireExchange(x exchange) *exchange {
	p := exchangePool.Get().(*exchange)
	*p = x
	return p
}

// release returns x to the pool unless a hedged run forked attempts that
// may still use it (losers finish after Do returns: Fork's send, Failure,
// Status and Discard in the abandoning goroutine); then the garbage
// collector takes it once they are done. A race-detector build zeroes it
// and leaves it to the collector too, so a use after release fails on a
// nil field at once instead of reading the next request's exchange.
func (x *exchange) release() {
	if x.forked {
		return
	}
	*x = exchange{}
	if !racebuild.Enabled {
		exchangePool.Put(x)
	}
}

// Send makes one attempt with the client's request.
func (x *exchange) Send(in *origins.Instance) (*fasthttp.Response, error) {
	hc := x.client(in)
	resp := fasthttp.AcquireResponse()
	err := sendToOrigin(hc, x.req, resp)
	// fasthttp cannot retry a streamed body; on a stale pooled
	// connection nothing reached the origin, so replay it here.
	for tries := 0; err != nil && x.body != nil && errors.Is(err, errStaleConn) && tries <= x.key.maxConns && x.body.rewind(); tries++ {
		x.c.Log("stale pooled connection, resending")
		x.req.SetBodyStream(x.body, x.c.Request.Request.Header.ContentLength())
		err = sendToOrigin(hc, x.req, resp)
	}
	if x.body != nil {
		x.c.BytesIn = x.body.n
	}
	return x.answer(resp, err)
}

// Fork copies the request now, on the loop's goroutine, for a hedged
// attempt: the client's request is released as soon as the race is
// decided, possibly before a losing attempt has started.
func (x *exchange) Fork() func(in *origins.Instance) (*fasthttp.Response, error) {
	x.forked = true
	own := fasthttp.AcquireRequest()
	x.req.CopyTo(own)
	return func(in *origins.Instance) (*fasthttp.Response, error) {
		defer fasthttp.ReleaseRequest(own)
		resp := fasthttp.AcquireResponse()
		return x.answer(resp, sendToOrigin(x.client(in), own, resp))
	}
}

func (x *exchange) client(in *origins.Instance) *fasthttp.HostClient {
	return x.e.pool.forInstance(in, x.e.instanceKey(x.key, x.origin, in))
}

// instanceKey is the pool key of instance in: key (the settings of the
// request's origin) with in's address, or, for an instance of another origin
// of the group (a retry, hedge or fallback member), that origin's timeouts,
// pool settings and TLS.
func (e *forwardEndpoint) instanceKey(key poolKey, origin string, in *origins.Instance) poolKey {
	if in.Origin() != origin {
		if o, ok := e.reg.Get(in.Origin()); ok {
			key = e.poolKeyFor(o.ConfigRef())
		}
	}
	key.addr = in.Addr()
	return key
}

func (x *exchange) answer(resp *fasthttp.Response, err error) (*fasthttp.Response, error) {
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, err
	}
	return resp, nil
}

func (x *exchange) Status(resp *fasthttp.Response) int { return resp.StatusCode() }

func (x *exchange) Discard(resp *fasthttp.Response) {
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
}

// Failure charges the instance: nothing, when the client's body failed or
// a stale pooled connection was closed before anything reached it.
func (x *exchange) Failure(err error) origins.Outcome {
	if x.clientFailed() || errors.Is(err, errStaleConn) {
		return origins.OutcomeCanceled
	}
	_, cat := classifyOriginError(err)
	return outcomeOf(cat)
}

func (x *exchange) clientFailed() bool { return x.body != nil && x.body.clientErr != nil }

func (x *exchange) Attempted(a origins.Attempt) {
	outcome := a.Outcome.String()
	if a.Status == 0 && x.clientFailed() {
		outcome = "client_error"
	}
	x.e.record(x.c, a.Origin, filters.Attempt{Instance: a.Instance, Start: a.Start, Duration: a.Duration,
		Outcome: outcome, Status: a.Status, Retry: a.Retry, Hedge: a.Hedge})
}

func (x *exchange) Retried() {
	if x.e.observer != nil {
		x.e.observer.IncRetry(x.origin)
	}
}

func (x *exchange) Hedged() {
	if x.e.observer != nil {
		x.e.observer.IncHedge(x.origin)
	}
}

func (x *exchange) Note(event string) { x.c.Log(event) }

// failure maps the loop's error to the request's failure.
func (x *exchange) failure(err error) error {
	var pe *origins.PickError
	switch {
	case errors.As(err, &pe):
		return pickError(x.origin, pe.Err)
	case x.clientFailed():
		return clientBodyError(x.body.clientErr)
	}
	status, cat := classifyOriginError(err)
	var de *dialError
	if errors.As(err, &de) && de.handshake {
		return filters.Fail(status, cat, "TLS handshake with origin "+x.c.Origin+" failed: "+tlsconf.Describe(de.err), err)
	}
	return filters.Fail(status, cat, originErrorReason(cat, x.c.Origin), err)
}

var _ origins.Exchange[*fasthttp.Response] = (*exchange)(nil)

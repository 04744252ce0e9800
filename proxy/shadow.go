package proxy

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/shadow"
)

// Traffic shadowing, the HTTP half (the policy is package shadow): a
// sampled request is copied on the request's goroutine, while the client's
// request still owns its buffers, and the copy is sent from a goroutine of
// its own. The client's request never waits for it: a copy that cannot run
// at once (max_concurrency reached) is skipped, not queued, and whatever
// the shadow does (hang, fail, answer slowly) reaches only metrics.

// ShadowObserver receives shadowing results (metrics); *metrics.Metrics is
// one.
type ShadowObserver interface {
	// ObserveShadow counts one shadowing decision (a shadow.Result*).
	ObserveShadow(route, result string)
	// ObserveShadowComparison records a shadow's answer next to its
	// primary's: whether the status classes match and both times to
	// response headers.
	ObserveShadowComparison(route string, match bool, primary, shadow time.Duration)
}

// ShadowObserverKey is the service shadowing reports to; optional.
var ShadowObserverKey = filters.NewServiceKey[ShadowObserver]("proxy.shadow_observer")

// shadowsKey is the builder's long-lived shadow runner.
var shadowsKey = filters.NewServiceKey[*shadowRunner]("proxy.shadows")

// maxShadowDrain bounds how much of a shadow's answer is read (and thrown
// away) before its connection is closed instead.
const maxShadowDrain = 1 << 20

// shadowRunner outlives snapshots: the in-flight count of each route's
// copies (so a reload never doubles the bound) and the copies still
// running, which closing the builder waits for.
type shadowRunner struct {
	mu    sync.Mutex
	slots map[string]*atomic.Int64
	wg    sync.WaitGroup
}

func newShadowRunner() *shadowRunner { return &shadowRunner{slots: map[string]*atomic.Int64{}} }

// slotsFor returns route's in-flight counter. Routes come from config, so
// the map is bounded by the routes ever configured.
func (r *shadowRunner) slotsFor(route string) *atomic.Int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.slots[route]
	if !ok {
		s = &atomic.Int64{}
		r.slots[route] = s
	}
	return s
}

// wait returns once every copy has ended; each is bounded by its timeout.
func (r *shadowRunner) wait() { r.wg.Wait() }

// shadowing is one route's shadow, built with its endpoint.
type shadowing struct {
	route    string
	mirror   *shadow.Mirror
	reg      *origins.Registry
	pool     *clientPool
	runner   *shadowRunner
	observer ShadowObserver // nil: not observed
	// mirroredNote is the passport note of a mirrored request, built once.
	mirroredNote string
}

func (s *shadowing) observe(result string) {
	if s.observer != nil {
		s.observer.ObserveShadow(s.route, result)
	}
}

// copyFor copies req, the request about to go to the primary, for the
// shadow when this request is sampled, its body is held whole and fits,
// and a slot is free; the copy is sent on its own goroutine. streamed
// reports a body that streams to the primary (never replayed).
func (s *shadowing) copyFor(c *filters.Context, req *fasthttp.Request, streamed bool) {
	if !s.mirror.Sampled() {
		return
	}
	if streamed || !s.mirror.BodyFits(len(req.Body())) {
		s.observe(shadow.ResultSkippedBody)
		c.Log("shadow: not mirrored, the body is streamed or over max_body")
		return
	}
	if !s.mirror.TryAcquire() {
		s.observe(shadow.ResultSkippedConcurrency)
		c.Log("shadow: not mirrored, max_concurrency copies in flight")
		return
	}
	cfg := s.mirror.Config()
	own := fasthttp.AcquireRequest()
	req.CopyTo(own) // headers, URI and body: nothing of the client's request is kept
	if cfg.Host != "" {
		// The URI is parsed (from the Host header) only when sent, so the
		// header decides the Host the shadow gets.
		own.Header.SetHost(cfg.Host)
	}
	own.Header.Set(shadow.Header, "1")
	cmp := shadow.NewComparison(func(primary, sh shadow.Answer) {
		if s.observer != nil {
			s.observer.ObserveShadowComparison(s.route, shadow.SameClass(primary.Status, sh.Status), primary.Latency, sh.Latency)
		}
	})
	c.OnDone(func(c *filters.Context) { cmp.Primary(shadow.Answer{Status: c.Status, Latency: primaryLatency(c)}) })
	c.Log(s.mirroredNote)
	s.runner.wg.Add(1)
	go s.send(own, cmp)
}

// primaryLatency is the primary's time to response headers: its last
// attempt's, 0 when none was made.
func primaryLatency(c *filters.Context) time.Duration {
	if n := len(c.Attempts); n > 0 {
		return c.Attempts[n-1].Duration
	}
	return 0
}

// send runs one copy to an instance of the shadow origin and reports it.
// The instance is charged with the outcome like any attempt, so a broken
// shadow's breakers open and stop it being sent to.
func (s *shadowing) send(req *fasthttp.Request, cmp *shadow.Comparison) {
	defer s.runner.wg.Done()
	defer s.mirror.Release()
	defer fasthttp.ReleaseRequest(req)
	cfg := s.mirror.Config()
	answer, ok := s.exchange(req, cfg)
	cmp.Shadow(answer)
	if ok {
		s.observe(shadow.ResultSent)
	} else {
		s.observe(shadow.ResultError)
	}
}

func (s *shadowing) exchange(req *fasthttp.Request, cfg shadow.Config) (shadow.Answer, bool) {
	o, ok := s.reg.Get(cfg.Origin)
	if !ok {
		return shadow.Answer{}, false
	}
	in, done, err := o.Pick(nil)
	if err != nil {
		return shadow.Answer{}, false
	}
	oc := o.ConfigRef()
	hc := s.pool.get(poolKey{addr: in.Addr(), connect: min(oc.Timeouts.Connect, cfg.Timeout), response: cfg.Timeout,
		idle: oc.IdleConnTimeout, maxConns: oc.MaxConnsPerInstance})
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	start := time.Now()
	err = sendToOrigin(hc, req, resp)
	latency := time.Since(start)
	if err != nil {
		_, cat := classifyOriginError(err)
		done.Done(origins.Result{Latency: latency, Outcome: outcomeOf(cat)})
		return shadow.Answer{}, false
	}
	status := resp.StatusCode()
	if stream := resp.BodyStream(); stream != nil {
		// Read what arrives within the timeout, then let go: the answer
		// is only compared, never used.
		_, _ = io.CopyN(io.Discard, &deadlineReader{r: stream, until: start.Add(cfg.Timeout)}, maxShadowDrain)
		_ = resp.CloseBodyStream()
	}
	done.Done(origins.Result{Latency: latency, Outcome: origins.OutcomeForStatus(status), Status: status})
	return shadow.Answer{Status: status, Latency: latency}, true
}

// deadlineReader ends a read loop once until has passed (each read is
// bounded by the connection's own timeout).
type deadlineReader struct {
	r     io.Reader
	until time.Time
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if time.Now().After(d.until) {
		return 0, io.EOF
	}
	return d.r.Read(p)
}

package origins

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// backend is a real fasthttp origin instance on 127.0.0.1.
type backend struct {
	addr   string
	srv    *fasthttp.Server
	ln     net.Listener
	delay  atomic.Int64 // nanoseconds before answering
	status atomic.Int32
	health atomic.Int32
	hits   atomic.Int64
	served chan struct{}
}

func startBackend(t *testing.T, delay time.Duration, status int) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String(), ln: ln, served: make(chan struct{})}
	b.delay.Store(int64(delay))
	b.status.Store(int32(status))
	b.health.Store(200)
	b.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/healthz" {
				ctx.SetStatusCode(int(b.health.Load()))
				return
			}
			b.hits.Add(1)
			if d := time.Duration(b.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			ctx.SetStatusCode(int(b.status.Load()))
			ctx.SetBodyString("ok")
		},
		IdleTimeout:           time.Second,
		MaxIdleWorkerDuration: 100 * time.Millisecond, // its cleaner goroutine sleeps this long; keep goleak happy
	}
	go func() {
		_ = b.srv.Serve(ln)
		close(b.served)
	}()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.srv.ShutdownWithContext(ctx)
	<-b.served
}

// driver plays the proxy: one fasthttp.HostClient per instance, attached through
// Subscribe, and the per-request Pick / done / retry / hedge contract.
type driver struct {
	t       *testing.T
	o       *Origin
	cancel  func()
	mu      sync.Mutex
	clients []*fasthttp.HostClient
	drains  sync.WaitGroup
}

func newDriver(t *testing.T, o *Origin) *driver {
	d := &driver{t: t, o: o}
	d.cancel = o.Subscribe(func(c Change) {
		for _, in := range c.Added {
			hc := &fasthttp.HostClient{Addr: in.Addr(), MaxConns: 512, MaxIdleConnDuration: 100 * time.Millisecond}
			in.SetAttachment(hc)
			d.mu.Lock()
			d.clients = append(d.clients, hc)
			d.mu.Unlock()
		}
		for _, in := range c.Removed {
			// Drain, not cut: close idle connections once in-flight attempts finish.
			d.drains.Add(1)
			go func() {
				defer d.drains.Done()
				<-in.Drained()
				in.Attachment().(*fasthttp.HostClient).CloseIdleConnections()
			}()
		}
	})
	t.Cleanup(d.close)
	return d
}

func (d *driver) close() {
	d.cancel()
	d.drains.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, hc := range d.clients {
		hc.CloseIdleConnections()
	}
}

// send performs one attempt and classifies it the way the proxy should.
func send(in *Instance, timeout time.Duration) Result {
	hc := in.Attachment().(*fasthttp.HostClient)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + in.Addr() + "/")
	start := time.Now()
	err := hc.DoTimeout(req, resp, timeout)
	r := Result{Latency: time.Since(start)}
	switch {
	case err == nil:
		r.Status = resp.StatusCode()
		r.Outcome = OutcomeForStatus(r.Status)
	case errors.Is(err, fasthttp.ErrTimeout):
		r.Outcome = OutcomeTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		r.Outcome = OutcomeReset
	default:
		r.Outcome = OutcomeConnectError
	}
	return r
}

type reqResult struct {
	latency  time.Duration
	status   int
	err      error
	attempts []Attempt
}

// httpExchange sends the loop's attempts over HTTP the way the proxy
// does, so these tests drive the real attempt loop (Do) against real
// instances.
type httpExchange struct {
	timeout  time.Duration
	attempts []Attempt
}

// outcomeError carries a failed attempt's classification from Send to
// Failure.
type outcomeError struct{ o Outcome }

func (e outcomeError) Error() string { return e.o.String() }

func (h *httpExchange) Fork() func(*Instance) (int, error) { return h.Send }

func (h *httpExchange) Send(in *Instance) (int, error) {
	r := send(in, h.timeout)
	if r.Status == 0 {
		return 0, outcomeError{r.Outcome}
	}
	return r.Status, nil
}

func (h *httpExchange) Status(status int) int     { return status }
func (h *httpExchange) Discard(int)               {}
func (h *httpExchange) Failure(err error) Outcome { return err.(outcomeError).o }
func (h *httpExchange) Attempted(a Attempt)       { h.attempts = append(h.attempts, a) }
func (h *httpExchange) Retried()                  {}
func (h *httpExchange) Hedged()                   {}
func (h *httpExchange) Note(string)               {}

// do runs one client request through the attempt loop: retries on another
// instance while the policy and the budget allow, a hedge when the origin
// hedges.
func (d *driver) do(method string) reqResult {
	start := time.Now()
	x := &httpExchange{timeout: d.o.Config().Timeouts.Response}
	ans, err := Do[int](d.o, nil, Request{Method: method, Replayable: true}, x)
	if err == nil {
		ans.Done.Done(Result{Latency: ans.Latency, Outcome: OutcomeForStatus(ans.Response), Status: ans.Response})
	}
	return reqResult{latency: time.Since(start), status: ans.Response, err: err, attempts: x.attempts}
}

type runStats struct {
	requests int
	hits     map[string]int64 // by backend address, from the backends' own counters
	lat      []time.Duration
	errors   int
	statuses map[int]int
	attempts int
	hedges   int
	retries  int
}

// slowerThan is the share of requests that took at least d.
func (s runStats) slowerThan(d time.Duration) float64 {
	n := 0
	for _, l := range s.lat {
		if l >= d {
			n++
		}
	}
	return float64(n) / float64(max(1, len(s.lat)))
}

func (s runStats) pct(q float64) time.Duration {
	l := slices.Clone(s.lat)
	slices.Sort(l)
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

func (s runStats) share(b *backend) float64 {
	var total int64
	for _, n := range s.hits {
		total += n
	}
	return float64(s.hits[b.addr]) / float64(total)
}

// run sends total requests from workers goroutines.
func (d *driver) run(workers, total int, backends ...*backend) runStats {
	before := map[string]int64{}
	for _, b := range backends {
		before[b.addr] = b.hits.Load()
	}
	var next atomic.Int64
	var mu sync.Mutex
	st := runStats{requests: total, statuses: map[int]int{}}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				r := d.do("GET")
				mu.Lock()
				st.lat = append(st.lat, r.latency)
				st.statuses[r.status]++
				if r.err != nil {
					st.errors++
				}
				st.attempts += len(r.attempts)
				for _, a := range r.attempts {
					if a.Hedge {
						st.hedges++
					}
					if a.Retry {
						st.retries++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Losing hedges may still be running; wait for them before reading counters.
	eventually(d.t, 10*time.Second, "in-flight attempts to finish", func() bool { return d.o.InFlight() == 0 })
	st.hits = map[string]int64{}
	for _, b := range backends {
		st.hits[b.addr] = b.hits.Load() - before[b.addr]
	}
	return st
}

func trafficOrigin(t *testing.T, mutate func(*OriginConfig), backends ...*backend) (*Origin, *driver) {
	cfg := DefaultOriginConfig()
	for _, b := range backends {
		cfg.Instances = append(cfg.Instances, InstanceConfig{Address: b.addr})
	}
	if mutate != nil {
		mutate(&cfg)
	}
	o := testOrigin(t, cfg, nil)
	return o, newDriver(t, o)
}

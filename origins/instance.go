package origins

import (
	"sync"
	"sync/atomic"
)

// Instance is one backend address of an origin. An Instance keeps its identity, and
// with it its in-flight count, latency estimate and breaker, for as long as its
// address stays in the origin's instance set, across any number of snapshot swaps.
// An address that leaves and later returns gets a new Instance.
type Instance struct {
	addr   string
	origin string
	weight atomic.Int32
	// inflight counts admitted attempts whose done callback has not run yet.
	inflight atomic.Int64
	ewma     *peakEWMA
	brk      atomic.Pointer[breaker]
	healthy  atomic.Bool

	// Health-check streaks; written only by the origin's checker goroutine.
	hcOK, hcFail int

	requests atomic.Uint64
	failures atomic.Uint64

	attachment atomic.Pointer[any]

	// Outlier detection: this interval's counters and failure streaks
	// (request path, atomics), and the ejection (see outlier.go).
	od outlierStats
	// ejectedUntil is the origin clock time the current ejection ends; 0
	// or past: not ejected.
	ejectedUntil atomic.Int64

	retired   atomic.Bool
	drainOnce sync.Once
	drained   chan struct{}
}

func newInstance(addr string, weight int, ewma *peakEWMA, b *breaker) *Instance {
	in := &Instance{addr: addr, ewma: ewma, drained: make(chan struct{})}
	in.weight.Store(int32(normWeight(weight)))
	in.brk.Store(b)
	in.healthy.Store(true)
	return in
}

func normWeight(w int) int {
	if w <= 0 {
		return 1
	}
	return w
}

// Origin is the name of the origin the instance belongs to.
func (in *Instance) Origin() string { return in.origin }

// Addr is the instance's host:port.
func (in *Instance) Addr() string { return in.addr }

// Weight is the instance's current weight (at least 1).
func (in *Instance) Weight() int { return int(in.weight.Load()) }

// InFlight is the number of attempts picked and not yet done.
func (in *Instance) InFlight() int64 { return in.inflight.Load() }

// BreakerState is the instance's circuit breaker state as last observed.
func (in *Instance) BreakerState() BreakerState { return in.brk.Load().State() }

// Healthy reports the active health check verdict (true when checks are disabled).
func (in *Instance) Healthy() bool { return in.healthy.Load() }

// Requests and Failures count completed attempts (failures: Outcome.Failed()).
func (in *Instance) Requests() uint64 { return in.requests.Load() }

// Failures counts completed attempts whose outcome failed.
func (in *Instance) Failures() uint64 { return in.failures.Load() }

// SetAttachment stores a value owned by the caller, typically the proxy's
// per-instance connection pool, so the hot path needs no map lookup.
func (in *Instance) SetAttachment(v any) { in.attachment.Store(&v) }

// Attachment returns the value stored by SetAttachment, or nil.
func (in *Instance) Attachment() any {
	if p := in.attachment.Load(); p != nil {
		return *p
	}
	return nil
}

// Drained returns a channel closed once the instance has left the instance set and
// its last in-flight attempt is done: the moment to close its idle connections.
func (in *Instance) Drained() <-chan struct{} { return in.drained }

// Retired reports whether the instance has left its origin's instance set.
func (in *Instance) Retired() bool { return in.retired.Load() }

func (in *Instance) retire() {
	in.retired.Store(true)
	in.maybeDrained()
}

// maybeDrained is called after retire and after every done; whichever sees both
// conditions first closes the channel.
func (in *Instance) maybeDrained() {
	if in.retired.Load() && in.inflight.Load() == 0 {
		in.drainOnce.Do(func() { close(in.drained) })
	}
}

// eligible is the lock-free part of the pick filter: healthy, breaker
// not open, not ejected by outlier detection.
func (in *Instance) eligible(now int64) bool {
	return in.healthy.Load() && in.brk.Load().available(now) && !in.ejected(now)
}

// ejected reports whether outlier detection keeps the instance out at now.
func (in *Instance) ejected(now int64) bool { return now < in.ejectedUntil.Load() }

package loadshed

import (
	"math"
	"sync/atomic"
	"time"
)

// Origin is the throttler of one origin. Its signals are the origin's
// concurrency against its learned limit (when the gateway connects a
// ConcurrencySource), in-flight requests, the error rate over a sliding
// window, and the mean time to response headers over the same window. It
// sheds only traffic bound for this origin, so one sick origin does not cost
// the others.
type Origin struct {
	scope
	cfg      atomic.Pointer[OriginConfig]
	inflight atomic.Int64
	win      atomic.Pointer[window]
	lastConc atomic.Pointer[OriginConcurrency] // ticker-written, for snapshots
	gate     gate
}

// Acquire passes the scope's enforcing limiter after Decide admitted the
// request: at once while fewer than the learned limit await headers, else
// after a short wait in a queue ordered by score. On false the request is
// shed (counted in this scope's bands) and the returned decision says so;
// on true pair it with Release once the response headers arrived.
func (o *Origin) Acquire(d Decision) (Decision, bool) {
	c := o.cfg.Load()
	if !c.Queue.Enabled || c.DryRun {
		return d, true
	}
	if o.gate.tryAcquire(d.Score) {
		// The common case, the gate open or below its limit: one lock, not
		// a second one to size a queue the request does not join.
		d.Queued = true
		return d, true
	}
	o.gate.mu.Lock()
	limit := o.gate.limit
	o.gate.mu.Unlock()
	maxQueue := max(int(c.Queue.Length*float64(limit))+1, minQueue)
	if o.gate.acquire(d.Score, o.maxWait(c, d.Score), probeWaitsOf(c), maxQueue) {
		d.Queued = true
		return d, true
	}
	o.shed.inc(d.Score)
	d.Shed, d.RetryAfter = true, o.owner.retryAfter()
	return d, false
}

// minQueue is the fewest queue entries, whatever the limit: an origin whose learned limit
// is a handful (a fast origin under light traffic) would otherwise refuse critical requests
// that arrive together during a hiccup of a few milliseconds. Every waiter is still bounded
// by its max wait, and the least critical is evicted first when the queue is full.
const minQueue = 16

// untestedWait is the most a request scored under probeMinScore waits for
// a tested slot (see gate.capFor) at an origin not known to refuse; one
// that starts refusing while the request waits (its first refusal at an
// untested concurrency is known at once) extends the wait to
// queue.max_wait. Short next to the latency of the queueing origins,
// whose own queue is where such a request would otherwise wait.
const untestedWait = 20 * time.Millisecond

// probeWaitsOf is the probe waits of an origin scope's config:
// untestedWait (at most max_wait) while the origin is not known to refuse,
// queue.max_wait once it is.
func probeWaitsOf(c *OriginConfig) probeWaits {
	return probeWaits{unknown: min(untestedWait, c.Queue.MaxWait), refusing: c.Queue.MaxWait}
}

// maxWait is how long a request of the given score may wait for a slot:
// max_wait, or twice the origin's no-load latency if longer (an origin
// answering in batches frees no slot for a whole service time), stretched
// by 1 + 9 * ((100 - score) / 100)^2 (score 95: 1.02x, 50: 3.25x, 10:
// 8.3x), so when slots come slowly the queue refuses the least critical
// first and critical requests wait rather than fail.
func (o *Origin) maxWait(c *OriginConfig, score int) time.Duration {
	base := c.Queue.MaxWait
	if lc := o.lastConc.Load(); lc != nil && 2*lc.NoLoadRTT > base {
		base = 2 * lc.NoLoadRTT
	}
	f := float64(100-min(max(score, 0), 100)) / 100
	// A gateway short of CPU delays every answer by its own scheduling
	// wait; a slot frees that much later through no fault of the origin.
	return time.Duration(float64(base)*(1+9*f*f)) + time.Duration(o.owner.global.starvedWait.Load())
}

// Release frees the slot Acquire took.
func (o *Origin) Release(d Decision) {
	if d.Queued {
		o.gate.release()
	}
}

// Begin counts a request as sent to the origin; pair it with Done.
func (o *Origin) Begin() { o.inflight.Add(1) }

// Done records a finished origin request: the origin's latency (its time
// to response headers; 0 if no answer came, which adds no latency sample)
// and whether it failed (connect error, timeout, reset, 5xx: whatever the
// caller counts as the origin's fault; shed or client-cancelled requests
// should not count).
func (o *Origin) Done(latency time.Duration, failed bool) {
	o.inflight.Add(-1)
	o.win.Load().add(latency, failed)
}

// Inflight returns the current in-flight count.
func (o *Origin) Inflight() int64 { return o.inflight.Load() }

// Name returns the origin name.
func (o *Origin) Name() string { return o.name }

// Decide checks score against this origin's cutoff. Lock-free and
// allocation-free.
func (o *Origin) Decide(score int) Decision { return o.decide(score) }

// capShare is the share of a hard cap (connection pool, max_concurrency)
// the concurrency signal treats as full, so shedding by priority starts
// before the cap refuses blindly.
const capShare = 0.9

// monitors names the origin scope's signals. The error rate maps
// proportionally (shedding does not mend a broken origin); the others are
// held at their thresholds.
func (o *Origin) monitors(c *OriginConfig) []monitor {
	s := c.Signals
	w := o.win.Load()
	minLat := uint64(s.Latency.MinSamples)
	minErr := uint64(s.ErrorRate.MinRequests)
	return []monitor{
		{name: "concurrency", spec: spec(s.Concurrency), response: Hold, sample: func(time.Time) float64 {
			src := o.owner.concurrency.Load()
			if src == nil {
				return 0
			}
			oc, ok := (*src)(o.name)
			if !ok {
				o.lastConc.Store(nil)
				o.gate.setLimit(0, 0, false)
				return 0
			}
			o.lastConc.Store(&oc)
			u := oc.utilisation()
			starved := time.Duration(o.owner.global.starvedWait.Load())
			if c.Queue.Enabled && oc.Limit > 0 {
				// Round down: an origin that refuses past its capacity has
				// its limit hovering just under it.
				limit := max(1, int(math.Floor(gateLimit(oc, starved))))
				o.gate.setLimit(limit, int(oc.Proven), oc.Refuses)
				held, queued := o.gate.load()
				u = max(u, float64(held+queued)/float64(limit))
			} else {
				o.gate.setLimit(0, 0, false)
			}
			// While the gateway itself is starved of CPU, attempts await
			// headers longer because the gateway reads them late, not
			// because the origin queues: hold the origin's level where it
			// is (neither raise nor release) and leave the overload to the
			// global scope, which sheds by priority across every origin.
			if starved > 0 {
				u = min(u, s.Concurrency.Threshold)
			}
			return u
		}},
		{name: "inflight", spec: spec(s.Inflight), response: Hold,
			sample: func(time.Time) float64 { return float64(o.inflight.Load()) }},
		{name: "error_rate", spec: signalSpec{enabled: s.ErrorRate.Enabled, threshold: s.ErrorRate.Threshold, max: s.ErrorRate.Max},
			response: Proportional, sample: func(time.Time) float64 {
				total, failed, _, _ := w.sums()
				if total == 0 || total < minErr {
					return 0
				}
				return float64(failed) / float64(total)
			}},
		{name: "latency", spec: signalSpec{enabled: s.Latency.Enabled, threshold: s.Latency.Threshold.Seconds(), max: s.Latency.Max.Seconds()},
			response: Hold, sample: func(time.Time) float64 {
				_, _, latNs, latN := w.sums()
				// Too few answers in the window say nothing: one slow
				// request on a quiet origin must not shed its traffic.
				if latN == 0 || latN < max(minLat, 1) {
					return 0
				}
				return time.Duration(latNs / latN).Seconds()
			}},
	}
}

func (o *Origin) tick(now time.Time, dt time.Duration) {
	c := o.cfg.Load()
	o.win.Load().advance(now)
	o.step(o.monitors(c), &c.ScopeConfig, now, dt)
}

// apply installs a new config, keeping in-flight counts, the controller's
// level and smoothed signals. The window keeps its history unless its
// shape changed.
func (o *Origin) apply(c *OriginConfig, now time.Time) {
	er := c.Signals.ErrorRate
	if w := o.win.Load(); w == nil || len(w.buckets) != er.Buckets || w.span != er.Window {
		o.win.Store(newWindow(er.Window, er.Buckets, now))
	}
	o.cfg.Store(c)
	o.republish(o.monitors(c), &c.ScopeConfig)
}

// gateLimit is the number of attempts the queue lets await headers at once: the learned
// limit, or, while the gateway itself is starved of CPU and reads every answer late by its
// own scheduling wait, the slots the same origin concurrency then occupies (Little's law:
// each attempt holds its slot for the origin's latency plus that wait), up to the hard cap.
func gateLimit(oc OriginConcurrency, starved time.Duration) float64 {
	if starved <= 0 || oc.NoLoadRTT <= 0 {
		return oc.Limit
	}
	l := oc.Limit * (1 + starved.Seconds()/oc.NoLoadRTT.Seconds())
	if oc.Cap > 0 {
		l = min(l, max(oc.Limit, oc.Cap))
	}
	return l
}

// OriginConcurrency is an origin's concurrency as its registry knows it:
// attempts awaiting response headers against the learned limit, and all
// attempts in flight (streaming bodies included) against the hard cap of
// the connection pool or max_concurrency (0 = none).
type OriginConcurrency struct {
	Awaiting  int64
	Limit     float64
	InFlight  int64
	Cap       float64
	NoLoadRTT time.Duration
	Learned   bool
	// Proven is the most attempts the origin has had awaiting headers at
	// once without refusing (0: not known); see gate.capFor. Refuses: the
	// origin has refused past its capacity lately (see probeWait).
	Proven  float64
	Refuses bool
}

// utilisation is the concurrency signal's value: the larger of awaiting /
// limit and in-flight / (capShare * cap).
func (c OriginConcurrency) utilisation() float64 {
	u := 0.0
	if c.Limit > 0 {
		u = float64(c.Awaiting) / c.Limit
	}
	if c.Cap > 0 {
		u = max(u, float64(c.InFlight)/(capShare*c.Cap))
	}
	return u
}

// ConcurrencySource reports an origin's concurrency by name; ok is false
// for an origin it does not know. It runs on the shedder's ticker.
type ConcurrencySource func(origin string) (OriginConcurrency, bool)

// LimitSnapshot is the adaptive limit of an origin scope, for admin.
type LimitSnapshot struct {
	Limit       float64 `json:"limit"`
	Awaiting    int64   `json:"awaiting_headers"`
	InFlight    int64   `json:"in_flight"`
	Cap         float64 `json:"cap"`
	NoLoadRTTMs float64 `json:"no_load_rtt_ms"`
	Learned     bool    `json:"learned"`
	// QueueHeld and QueueWaiting are the enforcing limiter's admitted
	// requests awaiting headers and the requests waiting for a slot.
	QueueHeld    int `json:"queue_held"`
	QueueWaiting int `json:"queue_waiting"`
}

func (o *Origin) limitSnapshot() *LimitSnapshot {
	c := o.lastConc.Load()
	if c == nil {
		return nil
	}
	held, queued := o.gate.load()
	return &LimitSnapshot{Limit: c.Limit, Awaiting: c.Awaiting, InFlight: c.InFlight, Cap: c.Cap,
		NoLoadRTTMs: float64(c.NoLoadRTT) / float64(time.Millisecond), Learned: c.Learned,
		QueueHeld: held, QueueWaiting: queued}
}

package loadshed

import (
	"sync/atomic"
	"time"
)

// Origin is the throttler of one origin. Its signals are in-flight requests
// to the origin, the error rate over a sliding window, and the mean latency
// over the same window against a target. It sheds only traffic bound for
// this origin, so one sick origin does not cost the others.
type Origin struct {
	scope
	cfg      atomic.Pointer[OriginConfig]
	inflight atomic.Int64
	win      atomic.Pointer[window]
}

// Begin counts a request as sent to the origin; pair it with Done.
func (o *Origin) Begin() { o.inflight.Add(1) }

// Done records a finished origin request: its latency and whether it
// failed (connect error, timeout, reset, 5xx: whatever the caller counts as
// the origin's fault; shed or client-cancelled requests should not count).
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

func (o *Origin) specs(c *OriginConfig) [maxSignals]signalSpec {
	s := c.Signals
	return [maxSignals]signalSpec{
		{name: "inflight", enabled: s.Inflight.Enabled, threshold: s.Inflight.Threshold, max: s.Inflight.Max},
		{name: "error_rate", enabled: s.ErrorRate.Enabled, threshold: s.ErrorRate.Threshold, max: s.ErrorRate.Max},
		{name: "latency", enabled: s.Latency.Enabled, threshold: s.Latency.Threshold.Seconds(), max: s.Latency.Max.Seconds()},
	}
}

func (o *Origin) tick(now time.Time, dt time.Duration) {
	c := o.cfg.Load()
	w := o.win.Load()
	w.advance(now)
	total, failed, latNs := w.sums()
	var errRate, lat float64
	if total > 0 {
		lat = time.Duration(latNs / total).Seconds()
		if total >= uint64(c.Signals.ErrorRate.MinRequests) {
			errRate = float64(failed) / float64(total)
		}
	}
	raw := [maxSignals]float64{float64(o.inflight.Load()), errRate, lat}
	o.step(raw, o.specs(c), &c.ScopeConfig, dt)
}

// apply installs a new config, keeping in-flight counts and smoothed
// signals. The window keeps its history unless its shape changed.
func (o *Origin) apply(c *OriginConfig, now time.Time) {
	er := c.Signals.ErrorRate
	if w := o.win.Load(); w == nil || len(w.buckets) != er.Buckets || w.span != er.Window {
		o.win.Store(newWindow(er.Window, er.Buckets, now))
	}
	o.cfg.Store(c)
	o.republish(o.specs(c), &c.ScopeConfig)
}

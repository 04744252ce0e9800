package origins

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Outlier ejection reasons, the reason label of
// floodgate_origin_outlier_ejections_total.
const (
	EjectConsecutive5xx             = "consecutive_5xx"
	EjectConsecutiveGatewayFailures = "consecutive_gateway_failures"
	EjectSuccessRate                = "success_rate"
	EjectLatency                    = "latency"
)

// EjectReasons lists the ejection reasons.
var EjectReasons = [...]string{EjectConsecutive5xx, EjectConsecutiveGatewayFailures, EjectSuccessRate, EjectLatency}

// outlierStats is one instance's outlier detection state. The counters of
// the current interval and the failure streaks are atomics written on the
// request path; the rest is the detector's, under its mutex.
type outlierStats struct {
	requests   atomic.Int64
	failures   atomic.Int64
	latencySum atomic.Int64 // ns, successful answers
	latencyN   atomic.Int64
	streak5xx  atomic.Int32
	streakGw   atomic.Int32

	// ejections is the ejection multiplier: times ejected, less one per
	// interval spent in without being ejected.
	ejections int
	reason    string // of the current or last ejection
}

// outlierDetector ejects and readmits an origin's instances.
type outlierDetector struct {
	o *Origin
	// mu serialises ejection decisions: the request path takes it only when
	// a failure streak reaches its threshold.
	mu       sync.Mutex
	ejected  [len(EjectReasons)]atomic.Uint64 // per EjectReasons entry
	skipped  atomic.Uint64                    // ejections refused by max_ejection_percent
	lastTick int64                            // when the current interval began
	// wake tells the detector goroutine an ejection was made on the
	// request path, so it schedules the readmission.
	wake chan struct{}
}

func (d *outlierDetector) init(o *Origin) { d.o, d.wake = o, make(chan struct{}, 1) }

// begin starts the first interval at now.
func (d *outlierDetector) begin(now int64) {
	d.mu.Lock()
	d.lastTick = now
	d.mu.Unlock()
}

// observe records an attempt's outcome for outlier detection; it runs in
// the done callback when detection is enabled.
func (d *outlierDetector) observe(cfg *OutlierConfig, in *Instance, r Result, now int64) {
	if r.Outcome == OutcomeCanceled {
		return
	}
	s := &in.od
	s.requests.Add(1)
	failed := r.Outcome.Failed()
	if failed {
		s.failures.Add(1)
	} else {
		s.latencySum.Add(int64(r.Latency))
		s.latencyN.Add(1)
	}
	if failed {
		if n := s.streak5xx.Add(1); cfg.Consecutive5xx > 0 && int(n) >= cfg.Consecutive5xx {
			d.eject(cfg, in, EjectConsecutive5xx, now)
		}
	} else {
		s.streak5xx.Store(0)
	}
	if gatewayFailure(r) {
		if n := s.streakGw.Add(1); cfg.ConsecutiveGatewayFailures > 0 && int(n) >= cfg.ConsecutiveGatewayFailures {
			d.eject(cfg, in, EjectConsecutiveGatewayFailures, now)
		}
	} else {
		s.streakGw.Store(0)
	}
}

// gatewayFailure: the instance could not be reached or answered as a
// gateway does when what is behind it fails.
func gatewayFailure(r Result) bool {
	switch r.Outcome {
	case OutcomeConnectError, OutcomeTimeout, OutcomeReset:
		return true
	case OutcomeStatus5xx:
		return r.Status == 502 || r.Status == 503 || r.Status == 504
	}
	return false
}

// eject takes in out of the pick until now + its ejection time, unless it
// is out already or max_ejection_percent would be exceeded.
func (d *outlierDetector) eject(cfg *OutlierConfig, in *Instance, reason string, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ejectLocked(cfg, d.o.snap.Load().list, in, reason, now)
}

func (d *outlierDetector) ejectLocked(cfg *OutlierConfig, list []*Instance, in *Instance, reason string, now int64) bool {
	if in.retired.Load() || in.ejected(now) {
		return false
	}
	// Record ended ejections first, so the ejections and readmissions
	// reported (hooks, logs) never show more out at once than there were.
	d.readmit(list, now)
	out := 0
	for _, x := range list {
		if x.ejected(now) {
			out++
		}
	}
	if float64(out+1) > cfg.MaxEjectionPercent/100*float64(len(list)) {
		d.skipped.Add(1)
		// Debug: a failing instance kept in retries this at every failure.
		d.o.log.Debug("outlier not ejected: max_ejection_percent reached", "origin", d.o.name, "instance", in.addr,
			"reason", reason, "ejected", out, "instances", len(list), "max_ejection_percent", cfg.MaxEjectionPercent)
		return false
	}
	s := &in.od
	s.ejections++
	s.reason = reason
	dur := time.Duration(min(int64(cfg.BaseEjectionTime)*int64(s.ejections), int64(cfg.MaxEjectionTime)))
	in.ejectedUntil.Store(now + int64(dur))
	s.streak5xx.Store(0)
	s.streakGw.Store(0)
	d.ejected[slices.Index(EjectReasons[:], reason)].Add(1)
	d.o.log.Warn("outlier instance ejected", "origin", d.o.name, "instance", in.addr, "reason", reason,
		"for", dur.String(), "ejections", s.ejections)
	if h := d.o.hooks.OnOutlierChange; h != nil {
		h(d.o.name, in.addr, true, reason)
	}
	d.o.notify()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return true
}

// tick readmits instances whose ejection time is over and, when a whole
// interval has passed since the last comparison, compares the instances'
// success rates and latencies over it. It returns when it wants to run
// next: the next interval or the next readmission, whichever is first.
func (d *outlierDetector) tick(cfg *OutlierConfig, now int64) (next int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := d.o.snap.Load().list
	readmitted := d.readmit(list, now)
	if now-d.lastTick >= int64(cfg.Interval) {
		d.lastTick = now
		d.compare(cfg, list, readmitted, now)
	}
	next = d.lastTick + int64(cfg.Interval)
	for _, in := range list {
		if u := in.ejectedUntil.Load(); u > now && u < next {
			next = u
		}
	}
	return next
}

// readmit returns instances whose ejection ended to the pick (the pick
// already takes them back at the deadline; this records it).
func (d *outlierDetector) readmit(list []*Instance, now int64) []*Instance {
	var back []*Instance
	for _, in := range list {
		if u := in.ejectedUntil.Load(); u != 0 && now >= u {
			in.ejectedUntil.Store(0)
			back = append(back, in)
			d.o.log.Info("outlier instance readmitted", "origin", d.o.name, "instance", in.addr, "reason", in.od.reason)
			if h := d.o.hooks.OnOutlierChange; h != nil {
				h(d.o.name, in.addr, false, "")
			}
		}
	}
	if len(back) > 0 {
		d.o.notify()
	}
	return back
}

// intervalStats is one instance's numbers over the interval just ended.
type intervalStats struct {
	in       *Instance
	requests int64
	rate     float64 // success rate
	latency  float64 // mean ns of successful answers
	answers  int64
}

// compare ends the interval: it applies the success-rate and latency rules
// to the instances not ejected, worst first, and decays the multiplier of
// instances that stayed in.
func (d *outlierDetector) compare(cfg *OutlierConfig, list []*Instance, readmitted []*Instance, now int64) {
	stats := make([]intervalStats, 0, len(list))
	for _, in := range list {
		s := &in.od
		st := intervalStats{in: in, requests: s.requests.Swap(0), answers: s.latencyN.Swap(0)}
		failures := s.failures.Swap(0)
		sum := s.latencySum.Swap(0)
		if in.ejected(now) {
			continue
		}
		if st.requests > 0 {
			st.rate = 1 - float64(failures)/float64(st.requests)
		}
		if st.answers > 0 {
			st.latency = float64(sum) / float64(st.answers)
		}
		stats = append(stats, st)
	}
	var out []*Instance
	if sr := cfg.SuccessRate; sr.StdevFactor > 0 {
		out = append(out, d.successRateOutliers(cfg, list, stats, now)...)
	}
	if l := cfg.Latency; l.Factor > 0 {
		out = append(out, d.latencyOutliers(cfg, list, stats, now)...)
	}
	for _, st := range stats {
		in := st.in
		if in.od.ejections > 0 && !slices.Contains(out, in) && !slices.Contains(readmitted, in) {
			in.od.ejections--
		}
	}
}

func (d *outlierDetector) successRateOutliers(cfg *OutlierConfig, list []*Instance, stats []intervalStats, now int64) []*Instance {
	sr := cfg.SuccessRate
	var rates []intervalStats
	for _, st := range stats {
		if st.requests >= int64(sr.MinRequests) {
			rates = append(rates, st)
		}
	}
	if len(rates) < sr.MinHosts {
		return nil
	}
	var sum, sq float64
	for _, st := range rates {
		sum += st.rate
	}
	mean := sum / float64(len(rates))
	for _, st := range rates {
		sq += (st.rate - mean) * (st.rate - mean)
	}
	threshold := mean - sr.StdevFactor*math.Sqrt(sq/float64(len(rates)))
	slices.SortFunc(rates, func(a, b intervalStats) int { return cmp.Compare(a.rate, b.rate) })
	var out []*Instance
	for _, st := range rates {
		if st.rate < threshold && d.ejectLocked(cfg, list, st.in, EjectSuccessRate, now) {
			out = append(out, st.in)
		}
	}
	return out
}

func (d *outlierDetector) latencyOutliers(cfg *OutlierConfig, list []*Instance, stats []intervalStats, now int64) []*Instance {
	l := cfg.Latency
	var lats []intervalStats
	for _, st := range stats {
		if st.answers >= int64(l.MinRequests) && !st.in.ejected(now) {
			lats = append(lats, st)
		}
	}
	if len(lats) < l.MinHosts {
		return nil
	}
	slices.SortFunc(lats, func(a, b intervalStats) int { return cmp.Compare(a.latency, b.latency) })
	median := lats[len(lats)/2].latency
	if len(lats)%2 == 0 {
		median = (lats[len(lats)/2-1].latency + lats[len(lats)/2].latency) / 2
	}
	var out []*Instance
	for i := len(lats) - 1; i >= 0; i-- { // slowest first
		st := lats[i]
		if st.latency > l.Factor*median && st.latency-median >= float64(l.MinDifference) &&
			d.ejectLocked(cfg, list, st.in, EjectLatency, now) {
			out = append(out, st.in)
		}
	}
	return out
}

// reset readmits every instance and clears the counters: detection was
// switched off, or its settings changed.
func (d *outlierDetector) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, in := range d.o.snap.Load().list {
		in.ejectedUntil.Store(0)
		s := &in.od
		s.requests.Store(0)
		s.failures.Store(0)
		s.latencySum.Store(0)
		s.latencyN.Store(0)
		s.streak5xx.Store(0)
		s.streakGw.Store(0)
		s.ejections = 0
	}
	d.o.notify()
}

// runOutlierDetection ticks the detector until ctx ends: every interval,
// and at each ejection's end so a readmission is recorded on time.
func (o *Origin) runOutlierDetection(ctx context.Context, cfg OutlierConfig) {
	o.outliers.begin(o.now())
	t := time.NewTimer(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-o.outliers.wake:
			t.Stop()
		}
		now := o.now()
		next := o.outliers.tick(&cfg, now)
		// An ejection made on the request path since may end sooner.
		t.Reset(time.Duration(max(next-now, int64(time.Millisecond))))
	}
}

// OutlierCounts are an origin's outlier detection totals.
type OutlierCounts struct {
	// Ejections counts ejections by reason (EjectReasons).
	Ejections map[string]uint64
	// Skipped counts ejections max_ejection_percent refused.
	Skipped uint64
	// Ejected is the number of instances out now.
	Ejected int
}

// OutlierCounts reports the origin's ejections so far and how many
// instances are out now.
func (o *Origin) OutlierCounts() OutlierCounts {
	c := OutlierCounts{Ejections: make(map[string]uint64, len(EjectReasons)), Skipped: o.outliers.skipped.Load()}
	for i, r := range EjectReasons {
		c.Ejections[r] = o.outliers.ejected[i].Load()
	}
	now := o.now()
	for _, in := range o.snap.Load().list {
		if in.ejected(now) {
			c.Ejected++
		}
	}
	return c
}

// Ejection describes an instance's outlier state for the admin view.
type Ejection struct {
	Ejected bool
	// Remaining is the time left of the current ejection.
	Remaining time.Duration
	// Reason is the current (or last) ejection's reason.
	Reason string
	// Multiplier is the ejection count that scales the next ejection.
	Multiplier int
}

// Ejection reports the instance's outlier state.
func (o *Origin) Ejection(in *Instance) Ejection {
	o.outliers.mu.Lock()
	defer o.outliers.mu.Unlock()
	now := o.now()
	e := Ejection{Ejected: in.ejected(now), Reason: in.od.reason, Multiplier: in.od.ejections}
	if e.Ejected {
		e.Remaining = time.Duration(in.ejectedUntil.Load() - now)
	}
	return e
}

package loadshed

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// maxSignals bounds the signals of one scope (the global scope has three,
// an origin three), so smoothing state is a fixed array.
const maxSignals = 3

// signalSpec is one signal's configuration, normalised to float64 units
// (latency in seconds).
type signalSpec struct {
	name      string
	enabled   bool
	threshold float64
	max       float64
}

// SignalSnapshot is one signal of a scope as last sampled.
type SignalSnapshot struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// Value is the latest raw sample, Smoothed its filtered value; both in
	// the signal's unit (count, fraction 0..1, or seconds for latency).
	Value     float64 `json:"value"`
	Smoothed  float64 `json:"smoothed"`
	Threshold float64 `json:"threshold"`
	Max       float64 `json:"max"`
	// Overload is this signal's overload fraction from Smoothed.
	Overload float64 `json:"overload"`
}

// scopeState is published atomically after every tick or config change so
// Decide needs a single atomic load for a consistent view.
type scopeState struct {
	cutoff   float64
	overload float64
	dryRun   bool
	signals  []SignalSnapshot
}

// scope is the curve, smoothing, hysteresis and counters shared by the
// global and origin throttlers.
type scope struct {
	kind  Scope
	name  string
	owner *Shedder

	state atomic.Pointer[scopeState]
	shed  bandCounters
	would bandCounters

	// mu serialises the ticker and live updates; the request path never
	// takes it.
	mu       sync.Mutex
	raw      [maxSignals]float64
	smoothed [maxSignals]float64
}

func (s *scope) init(kind Scope, name string, owner *Shedder, dryRun bool) {
	s.kind, s.name, s.owner = kind, name, owner
	s.state.Store(&scopeState{cutoff: 100, dryRun: dryRun})
}

// decide is the hot path: one atomic load, a comparison, and a counter
// increment only when the request is (or would be) shed.
func (s *scope) decide(score int) Decision {
	st := s.state.Load()
	d := Decision{Scope: s.kind, Origin: s.name, Score: score, Cutoff: st.cutoff, Overload: st.overload}
	if !Sheds(score, st.cutoff) {
		return d
	}
	if st.dryRun {
		d.WouldShed = true
		s.would.inc(score)
		return d
	}
	d.Shed = true
	d.RetryAfter = s.owner.retryAfter()
	s.shed.inc(score)
	return d
}

// step feeds one round of raw samples through the smoothing filter and
// republishes the cutoff, subject to hysteresis.
func (s *scope) step(raw [maxSignals]float64, specs [maxSignals]signalSpec, cfg *ScopeConfig, dt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up := ewmaAlpha(dt.Seconds(), cfg.Smoothing.Rise.Seconds())
	down := ewmaAlpha(dt.Seconds(), cfg.Smoothing.Fall.Seconds())
	for i := range raw {
		v := raw[i]
		if !finite(v) || v < 0 {
			v = 0
		}
		// A spike far past max would otherwise keep the smoothed value
		// above max long after it ended; twice the band is plenty to drive
		// x to 1 quickly and bounds the recovery time.
		if sp := specs[i]; sp.enabled && v > sp.max+(sp.max-sp.threshold) {
			v = sp.max + (sp.max - sp.threshold)
		}
		s.raw[i] = v
		a := down
		if v > s.smoothed[i] {
			a = up
		}
		s.smoothed[i] += a * (v - s.smoothed[i])
	}
	s.publishLocked(specs, cfg, false)
}

// republish recomputes the cutoff from the current smoothed signals under
// a new configuration, bypassing hysteresis so the change is immediate.
func (s *scope) republish(specs [maxSignals]signalSpec, cfg *ScopeConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(specs, cfg, true)
}

func (s *scope) publishLocked(specs [maxSignals]signalSpec, cfg *ScopeConfig, force bool) {
	sigs := make([]SignalSnapshot, 0, maxSignals)
	x := 0.0
	for i, sp := range specs {
		if sp.name == "" {
			continue
		}
		ss := SignalSnapshot{
			Name: sp.name, Enabled: sp.enabled, Value: s.raw[i], Smoothed: s.smoothed[i],
			Threshold: sp.threshold, Max: sp.max,
		}
		if sp.enabled {
			ss.Overload = Overload(s.smoothed[i], sp.threshold, sp.max)
			x = math.Max(x, ss.Overload)
		}
		sigs = append(sigs, ss)
	}
	target := Cutoff(x, cfg.K)
	prev := s.state.Load()
	// Recovering to within the hysteresis band of 100 means "no real
	// overload": publish 100, or the cutoff would stay stuck just below it
	// (the last step never reaches the band) and keep shedding the lowest
	// priorities for as long as the load hovers above the threshold.
	if !force && target > prev.cutoff && 100-target < cfg.Hysteresis {
		target = 100
	}
	cutoff := prev.cutoff
	if force || target == 0 || target == 100 || math.Abs(target-prev.cutoff) >= cfg.Hysteresis {
		cutoff = target
	}
	s.state.Store(&scopeState{cutoff: cutoff, overload: x, dryRun: cfg.DryRun, signals: sigs})
}

// snapshot copies the published state and counters.
func (s *scope) snapshot() ScopeSnapshot {
	st := s.state.Load()
	return ScopeSnapshot{
		Scope: s.kind, Name: s.name, DryRun: st.dryRun,
		Cutoff: st.cutoff, Overload: st.overload,
		Signals:   append([]SignalSnapshot(nil), st.signals...),
		Shed:      s.shed.load(),
		WouldShed: s.would.load(),
	}
}

// ScopeSnapshot is the observable state of one scope, for metrics and the
// admin endpoint.
type ScopeSnapshot struct {
	Scope Scope `json:"scope"`
	// Name is "global" or the origin name.
	Name     string           `json:"name"`
	DryRun   bool             `json:"dry_run"`
	Cutoff   float64          `json:"cutoff"`
	Overload float64          `json:"overload"`
	Inflight int64            `json:"in_flight"`
	Signals  []SignalSnapshot `json:"signals"`
	// Shed and WouldShed count decisions per score band since start.
	Shed      BandCounts `json:"shed"`
	WouldShed BandCounts `json:"would_shed"`
}

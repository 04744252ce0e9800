package loadshed

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// SignalSnapshot is one signal of a scope as last sampled.
type SignalSnapshot struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// Response is "hold" or "proportional" (see Response).
	Response Response `json:"response"`
	// Value is the latest raw sample, Smoothed its filtered value; both in
	// the signal's unit (count, fraction 0..1, seconds for latency, ratio
	// to the learned limit for concurrency).
	Value     float64 `json:"value"`
	Smoothed  float64 `json:"smoothed"`
	Threshold float64 `json:"threshold"`
	Max       float64 `json:"max"`
	// Overload is this signal's pressure (overload fraction) from Smoothed.
	Overload float64 `json:"overload"`
}

// scopeState is published atomically after every tick or config change so
// Decide needs a single atomic load for a consistent view.
type scopeState struct {
	cutoff   float64
	overload float64
	level    float64
	dryRun   bool
	// partial: a request in the band straddling a fractional cutoff is
	// admitted with the probability of the fraction (hold mode).
	partial bool
	signals []SignalSnapshot
}

// scope is the monitors, controller, curve, hysteresis and counters shared
// by the global and origin throttlers.
type scope struct {
	kind  Scope
	name  string
	owner *Shedder

	state atomic.Pointer[scopeState]
	shed  bandCounters
	would bandCounters

	// mu serialises the ticker and live updates; the request path never
	// takes it.
	mu      sync.Mutex
	signals map[string]*signalState
	ctl     controller
	// starved, when set, gives the level the scope's Starvation signals
	// ask for (a floor under the controller's); it is called under mu with
	// the pressure, headroom ratio of those signals, or to read the current
	// level without stepping (dt 0).
	starved func(pressure, ratio float64, dt time.Duration) float64
}

func (s *scope) init(kind Scope, name string, owner *Shedder, dryRun bool) {
	s.kind, s.name, s.owner = kind, name, owner
	s.signals = map[string]*signalState{}
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
	// In hold mode the band just above a fractional cutoff is admitted in
	// proportion (cutoff 84.3 admits 30 % of score 85): the controller can
	// then settle between two bands instead of cycling between them.
	if st.partial && float64(score) < st.cutoff+1 && s.owner.rand() < st.cutoff+1-float64(score) {
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

// step samples every monitor, smooths, advances the controller and
// republishes the cutoff, subject to hysteresis.
func (s *scope) step(mons []monitor, cfg *ScopeConfig, now time.Time, dt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up := ewmaAlpha(dt.Seconds(), cfg.Smoothing.Rise.Seconds())
	down := ewmaAlpha(dt.Seconds(), cfg.Smoothing.Fall.Seconds())
	for i := range mons {
		m := &mons[i]
		v := m.sample(now)
		if !finite(v) || v < 0 {
			v = 0
		}
		// A spike far past max would otherwise keep the smoothed value
		// above max long after it ended; twice the band is plenty to drive
		// x to 1 quickly and bounds the recovery time.
		if sp := m.spec; sp.enabled && v > sp.max+(sp.max-sp.threshold) {
			v = sp.max + (sp.max - sp.threshold)
		}
		st := s.stateOf(m.name)
		st.raw = v
		a := down
		if v > st.smoothed {
			a = up
		}
		st.smoothed += a * (v - st.smoothed)
	}
	s.publishLocked(mons, cfg, dt, false)
}

func (s *scope) stateOf(name string) *signalState {
	st, ok := s.signals[name]
	if !ok {
		st = &signalState{}
		s.signals[name] = st
	}
	return st
}

// republish recomputes the cutoff from the current level and smoothed
// signals under a new configuration, bypassing hysteresis so the change is
// immediate.
func (s *scope) republish(mons []monitor, cfg *ScopeConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(mons, cfg, 0, true)
}

func (s *scope) publishLocked(mons []monitor, cfg *ScopeConfig, dt time.Duration, force bool) {
	sigs := make([]SignalSnapshot, 0, len(mons))
	held, floor, headroom := 0.0, 0.0, 1.0
	starvedX, starvedRatio := 0.0, 0.0
	for i := range mons {
		m := &mons[i]
		st := s.stateOf(m.name)
		ss := SignalSnapshot{
			Name: m.name, Enabled: m.spec.enabled, Response: m.response, Value: st.raw, Smoothed: st.smoothed,
			Threshold: m.spec.threshold, Max: m.spec.max,
		}
		if m.spec.enabled {
			ss.Overload = m.pressure(st.smoothed)
			switch m.response {
			case Proportional:
				floor = math.Max(floor, ss.Overload)
			case Starvation:
				starvedX = math.Max(starvedX, ss.Overload)
				starvedRatio = math.Max(starvedRatio, ratioOf(true, st.smoothed, m.spec.threshold))
			default:
				held = math.Max(held, ss.Overload)
				headroom = math.Min(headroom, m.headroom(st.smoothed))
			}
		}
		sigs = append(sigs, ss)
	}
	overload := math.Max(math.Max(held, floor), starvedX)
	if s.starved != nil {
		step := dt
		if force {
			step = 0
		}
		floor = math.Max(floor, s.starved(starvedX, starvedRatio, step))
	}
	x := math.Max(held, floor)
	level := s.ctl.level
	if !force {
		level = s.ctl.step(cfg.Controller, held, headroom, floor, dt)
	} else if cfg.Controller.Mode == ModeProportional {
		level = x
		s.ctl.level = x
	} else {
		level = math.Max(level, floor)
	}
	target := Cutoff(level, cfg.K)
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
	s.state.Store(&scopeState{
		cutoff: cutoff, overload: overload, level: level, dryRun: cfg.DryRun,
		partial: cfg.Controller.Mode != ModeProportional, signals: sigs,
	})
}

// snapshot copies the published state and counters.
func (s *scope) snapshot() ScopeSnapshot {
	st := s.state.Load()
	return ScopeSnapshot{
		Scope: s.kind, Name: s.name, DryRun: st.dryRun,
		Cutoff: st.cutoff, Overload: st.overload, Level: st.level,
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
	Name     string  `json:"name"`
	DryRun   bool    `json:"dry_run"`
	Cutoff   float64 `json:"cutoff"`
	Overload float64 `json:"overload"`
	// Level is the controller's shedding level (0..1) that the curve turns
	// into Cutoff.
	Level    float64          `json:"level"`
	K        float64          `json:"k"`
	Inflight int64            `json:"in_flight"`
	Signals  []SignalSnapshot `json:"signals"`
	// Limit is the origin's learned concurrency limit (origin scopes with
	// a concurrency source only).
	Limit *LimitSnapshot `json:"adaptive_limit,omitempty"`
	// Starvation is the global scope's starvation controller (global only,
	// while its cpu or sched_latency signal is on).
	Starvation *StarvationSnapshot `json:"starvation,omitempty"`
	// Shed and WouldShed count decisions per score band since start.
	Shed      BandCounts `json:"shed"`
	WouldShed BandCounts `json:"would_shed"`
}

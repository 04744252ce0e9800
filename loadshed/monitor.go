package loadshed

import "time"

// Response says how a scope's controller uses a monitor's pressure.
type Response uint8

const (
	// Hold: shedding relieves this signal (in-flight requests, CPU,
	// concurrency against the learned limit, latency), so the controller
	// integrates: it raises shedding while the value stays above threshold
	// and releases it while the value is below, holding the value at the
	// threshold.
	Hold Response = iota
	// Proportional: shedding does not relieve this signal (the error rate
	// of a broken origin, open connections); its pressure maps straight to
	// a level on the curve, as a floor under the controller's own level.
	Proportional
	// Starvation: the global scope's CPU signals (sched_latency, cpu) drive the
	// starvation controller (starvation.go), which raises shedding only while
	// shedding shortens the waits and never below global.min_cutoff.
	Starvation
)

// String names the response in the admin snapshot.
func (r Response) String() string {
	switch r {
	case Proportional:
		return "proportional"
	case Starvation:
		return "starvation"
	}
	return "hold"
}

// MarshalText renders the response by name in JSON.
func (r Response) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// monitor is one named overload signal of a scope (the resource monitor of
// Envoy's overload manager): a name, a threshold/max spec and a sampler. It
// reports pressure 0..1 and the scope takes the worst.
type monitor struct {
	name     string
	spec     signalSpec
	response Response
	// sample reads the raw value on the ticker goroutine.
	sample func(now time.Time) float64
}

// signalSpec is one signal's configuration, normalised to float64 units
// (latency in seconds, concurrency as a ratio to the learned limit).
type signalSpec struct {
	enabled   bool
	threshold float64
	max       float64
}

// signalState is a monitor's smoothing state, kept by name across ticks and
// config reloads.
type signalState struct {
	raw, smoothed float64
}

// pressure is the monitor's overload fraction for a smoothed value.
func (m *monitor) pressure(v float64) float64 {
	if !m.spec.enabled {
		return 0
	}
	return Overload(v, m.spec.threshold, m.spec.max)
}

// headroom is how far below its threshold the value sits, as a fraction of
// the threshold (1 = idle, 0 = at or above the threshold).
func (m *monitor) headroom(v float64) float64 {
	if !m.spec.enabled || m.spec.threshold <= 0 {
		return 1
	}
	if v >= m.spec.threshold {
		return 0
	}
	return (m.spec.threshold - v) / m.spec.threshold
}

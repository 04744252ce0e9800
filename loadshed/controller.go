package loadshed

import (
	"math"
	"time"
)

// ControllerConfig shapes how a scope's shedding level moves. The level
// (0..1) is what the cubic curve turns into a cutoff: 100 * (1 - k*level^3).
type ControllerConfig struct {
	// Mode "hold" (default) integrates as described below and admits the
	// band straddling a fractional cutoff in proportion; "proportional"
	// maps the smoothed worst pressure straight to the level (the behaviour
	// before the controller: faster, but a feedback signal such as in-flight
	// requests makes it swing).
	Mode string `mapstructure:"mode"`
	// Raise is the time the level takes from 0 to 1 while a held signal is
	// at or past its max; at lesser overload it rises proportionally slower.
	Raise time.Duration `mapstructure:"raise"`
	// Release is the time the level takes from 1 back to 0 once every held
	// signal is well below its threshold (25 % or more); closer to the
	// threshold it falls proportionally slower, so the level settles where
	// the signal sits at its threshold instead of swinging around it.
	Release time.Duration `mapstructure:"release"`
	// Damping is the proportional gain on the change of the error (level
	// per unit of pressure change); it stops the level overshooting when
	// overload is already falling.
	Damping float64 `mapstructure:"damping"`
}

// Controller modes.
const (
	ModeHold         = "hold"
	ModeProportional = "proportional"
)

// releaseFullSpeedBelow is the headroom (fraction below threshold) from
// which the level falls at full release speed.
const releaseFullSpeedBelow = 0.25

// controller integrates the worst pressure of a scope's held signals into a
// shedding level: shedding rises while overload persists and backs off as
// it clears, so the cutoff walks band by band instead of jumping with every
// burst. Proportional signals set a floor under the level.
type controller struct {
	level float64
	// prevErr is the last tick's error, for the proportional term.
	prevErr float64
}

// step advances the level by dt. x is the worst pressure of the held
// signals, headroom the least headroom among them, floor the worst pressure
// of the proportional ones.
func (c *controller) step(cfg ControllerConfig, x, headroom, floor float64, dt time.Duration) float64 {
	if cfg.Mode == ModeProportional {
		c.level = math.Max(x, floor)
		return c.level
	}
	s := dt.Seconds()
	// The error is the pressure above the threshold, or the (scaled)
	// headroom below it as a negative number.
	e := x
	if x <= 0 {
		e = -math.Min(1, headroom/releaseFullSpeedBelow)
	}
	// Integral term: raise while overloaded, release while clear.
	if e > 0 {
		c.level += rate(s, cfg.Raise) * e
	} else {
		c.level += rate(s, cfg.Release) * e
	}
	// Proportional term on the change of the error (PI in velocity form):
	// overload that is already shrinking (a queue draining after the
	// spike's onset) stops raising the level at once instead of winding it
	// past what the steady state needs. It acts on the overload side only:
	// a signal moving about below its threshold sheds nothing.
	c.level += cfg.Damping * (math.Max(e, 0) - math.Max(c.prevErr, 0))
	c.prevErr = e
	c.level = math.Max(0, math.Min(1, c.level))
	return math.Max(c.level, floor)
}

// rate is the share of the full range covered in s seconds by a ramp of
// duration d (a zero ramp covers it at once).
func rate(s float64, d time.Duration) float64 {
	if d <= 0 {
		return 1
	}
	return s / d.Seconds()
}

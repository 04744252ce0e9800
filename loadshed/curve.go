package loadshed

import "math"

// Overload maps a signal value to an overload fraction in [0, 1]:
// 0 at or below threshold, 1 at or above max, linear in between.
// It assumes max > threshold, which Validate guarantees.
func Overload(value, threshold, max float64) float64 {
	if !(value > threshold) { // also catches NaN
		return 0
	}
	if value >= max {
		return 1
	}
	return (value - threshold) / (max - threshold)
}

// Cutoff is the cubic curve: the highest score still admitted at overload
// x is 100 * (1 - k * x^3), clamped to [0, 100]. A request is shed when its
// score is strictly above the cutoff, so a score of 0 is never shed.
func Cutoff(x, k float64) float64 {
	if !(x > 0) {
		return 100
	}
	if x > 1 {
		x = 1
	}
	c := 100 * (1 - k*x*x*x)
	switch {
	case c < 0:
		return 0
	case c > 100:
		return 100
	}
	return c
}

// Sheds reports whether a request with the given score is above cutoff.
func Sheds(score int, cutoff float64) bool {
	return float64(score) > cutoff
}

// ewmaAlpha turns a time constant into the per-tick weight of a new sample.
func ewmaAlpha(tick, tau float64) float64 {
	if tau <= 0 || tick <= 0 {
		return 1
	}
	return 1 - math.Exp(-tick/tau)
}

// levelForCutoff inverts Cutoff: the level at which the curve reaches cutoff
// for k (1 when k is 0 or the cutoff is out of reach).
func levelForCutoff(cutoff, k float64) float64 {
	if !(k > 0) {
		return 1
	}
	l := math.Cbrt((1 - cutoff/100) / k)
	return min(max(l, 0), 1)
}

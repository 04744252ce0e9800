// Package deadline owns the rule for re-arming a connection's per-operation
// deadline lazily: a deadline is armed with some slack past its timeout, so
// that it need not be re-armed (a runtime timer update) before every read
// or write, yet a stalled operation is still cut soon after the timeout.
package deadline

import "time"

// Slack is how far past the timeout an armed deadline lies, as a fraction
// (1/Slack) of the timeout. A stall is then cut between 1x and 1.25x the
// timeout after the last progress, and a busy connection re-arms a few
// times per timeout instead of once per operation.
const Slack = 4

// Due returns the deadline to arm for an operation starting at now, given
// the one armed (zero: none) and the timeout, never later than bound (zero:
// no bound). ok is false when the armed deadline may stay: it cuts a stall
// no sooner than the timeout and no later than what would be armed.
func Due(now, armed time.Time, timeout time.Duration, bound time.Time) (d time.Time, ok bool) {
	d = now.Add(timeout + timeout/Slack)
	if !bound.IsZero() && bound.Before(d) {
		d = bound
	}
	if !armed.IsZero() && !armed.After(d) && (armed.Sub(now) >= timeout || armed.Equal(d)) {
		return time.Time{}, false
	}
	return d, true
}

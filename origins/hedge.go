package origins

import "time"

// hedgePolicy is HedgeConfig prepared for the hot path.
type hedgePolicy struct {
	delay      time.Duration
	quantile   float64 // 0: fixed delay only
	minSamples uint64
	maxDelay   time.Duration
}

func newHedgePolicy(c HedgeConfig) hedgePolicy {
	return hedgePolicy{
		delay:      c.Delay,
		quantile:   c.Percentile / 100,
		minSamples: uint64(max(c.MinSamples, 1)),
		maxDelay:   c.MaxDelay,
	}
}

// HedgeDelay returns how long the proxy should wait for the first attempt before
// sending a hedge to another instance, and false when hedging is off (or, for a
// percentile policy without a fallback delay, not yet warmed up). The proxy must only
// hedge idempotent requests and must win Budget().TryRetry() before sending the hedge.
func (o *Origin) HedgeDelay() (time.Duration, bool) {
	hp := o.pol.Load().hedge
	if hp.quantile > 0 {
		if d, n := o.lat.quantile(hp.quantile); n >= hp.minSamples && d > 0 {
			if hp.maxDelay > 0 && d > hp.maxDelay {
				d = hp.maxDelay
			}
			return d, true
		}
	}
	if hp.delay > 0 {
		return hp.delay, true
	}
	return 0, false
}

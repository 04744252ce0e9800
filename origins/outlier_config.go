package origins

import (
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

// OutlierConfig is an origin's outlier detection (Envoy-style), beside the
// per-instance breaker: instances that fail in a row, or whose success rate
// or latency over an interval is far from their peers', are ejected for
// base_ejection_time times the number of times they were ejected (capped),
// never more than max_ejection_percent of the origin at once. An ejected
// instance is skipped by the picker like one whose breaker is open.
//
// It is off by default: the breaker (5 consecutive failures) and the P2C
// failure penalty already stop traffic to an instance that fails outright,
// and the statistical rules need steady traffic over several instances to
// tell an outlier from noise, so turning them on is a deliberate choice per
// origin. The other defaults are what enabling it gets: conservative
// (Envoy's for the success rate; an instance must be 3x its peers' median
// latency and 25ms slower to count as slow).
type OutlierConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Interval is how often success rates and latencies are compared (and
	// each instance's ejection multiplier decays by one while it stays in).
	Interval time.Duration `mapstructure:"interval"`
	// BaseEjectionTime is multiplied by the number of times the instance
	// has been ejected; MaxEjectionTime caps the product.
	BaseEjectionTime time.Duration `mapstructure:"base_ejection_time"`
	MaxEjectionTime  time.Duration `mapstructure:"max_ejection_time"`
	// MaxEjectionPercent caps the instances ejected at once: floor(percent
	// of the instances), so with 3 instances and 50% only one. It is never
	// exceeded; an ejection that would exceed it is skipped and counted.
	MaxEjectionPercent float64 `mapstructure:"max_ejection_percent"`
	// Consecutive5xx ejects an instance after this many failures in a row
	// (5xx answers and transport failures); 0 disables.
	Consecutive5xx int `mapstructure:"consecutive_5xx"`
	// ConsecutiveGatewayFailures ejects after this many gateway failures in
	// a row (connect errors, timeouts, resets, 502, 503, 504); 0 disables.
	ConsecutiveGatewayFailures int                  `mapstructure:"consecutive_gateway_failures"`
	SuccessRate                SuccessRateConfig    `mapstructure:"success_rate"`
	Latency                    LatencyOutlierConfig `mapstructure:"latency"`
}

// SuccessRateConfig ejects instances whose success rate over the interval is
// below mean - stdev_factor * stdev of the instances with at least
// min_requests, when there are at least min_hosts of them. With n
// instances no rate can lie more than (n-1)/sqrt(n) standard deviations
// from the mean (1.15 for 3, 1.79 for 5), so the rule needs about 5
// instances at the default factor of 1.9.
type SuccessRateConfig struct {
	// StdevFactor is k; 0 disables the rule.
	StdevFactor float64 `mapstructure:"stdev_factor"`
	MinHosts    int     `mapstructure:"min_hosts"`
	MinRequests int     `mapstructure:"min_requests"`
}

// LatencyOutlierConfig ejects instances whose mean time to response headers
// over the interval is more than factor times the median of the instances
// with at least min_requests answers, and at least min_difference above it,
// when there are at least min_hosts of them. The median is robust to the
// outlier itself, so the rule works with as few as 3 instances.
type LatencyOutlierConfig struct {
	// Factor is the multiple of the median; 0 disables the rule.
	Factor        float64       `mapstructure:"factor"`
	MinDifference time.Duration `mapstructure:"min_difference"`
	MinHosts      int           `mapstructure:"min_hosts"`
	MinRequests   int           `mapstructure:"min_requests"`
}

// DefaultOutlierConfig returns the defaults (detection off).
func DefaultOutlierConfig() OutlierConfig {
	return OutlierConfig{
		Interval:           10 * time.Second,
		BaseEjectionTime:   30 * time.Second,
		MaxEjectionTime:    5 * time.Minute,
		MaxEjectionPercent: 50,
		Consecutive5xx:     5,
		SuccessRate:        SuccessRateConfig{StdevFactor: 1.9, MinHosts: 5, MinRequests: 100},
		Latency:            LatencyOutlierConfig{Factor: 3, MinDifference: 25 * time.Millisecond, MinHosts: 3, MinRequests: 20},
	}
}

func (c OutlierConfig) validate(fe *decode.Errors, at string) {
	if !c.Enabled {
		return
	}
	if c.Interval < 10*time.Millisecond {
		fe.Add(at+".interval", "must be at least 10ms")
	}
	if c.BaseEjectionTime <= 0 {
		fe.Add(at+".base_ejection_time", "must be positive")
	}
	if c.MaxEjectionTime < c.BaseEjectionTime {
		fe.Add(at+".max_ejection_time", "must be at least base_ejection_time (%v)", c.BaseEjectionTime)
	}
	if c.MaxEjectionPercent < 0 || c.MaxEjectionPercent > 100 {
		fe.Add(at+".max_ejection_percent", "must be a percentage in [0, 100], got %v", c.MaxEjectionPercent)
	}
	if c.Consecutive5xx < 0 {
		fe.Add(at+".consecutive_5xx", "must be >= 0 (0 disables)")
	}
	if c.ConsecutiveGatewayFailures < 0 {
		fe.Add(at+".consecutive_gateway_failures", "must be >= 0 (0 disables)")
	}
	sr := c.SuccessRate
	if sr.StdevFactor < 0 {
		fe.Add(at+".success_rate.stdev_factor", "must be >= 0 (0 disables)")
	}
	if sr.StdevFactor > 0 {
		if sr.MinHosts < 2 {
			fe.Add(at+".success_rate.min_hosts", "must be at least 2 (peers to compare)")
		}
		if sr.MinRequests < 1 {
			fe.Add(at+".success_rate.min_requests", "must be positive")
		}
	}
	l := c.Latency
	if l.Factor != 0 && l.Factor <= 1 {
		fe.Add(at+".latency.factor", "must be above 1 (a multiple of the median), or 0 to disable; got %v", l.Factor)
	}
	if l.Factor > 0 {
		if l.MinHosts < 3 {
			fe.Add(at+".latency.min_hosts", "must be at least 3 (a median of peers)")
		}
		if l.MinRequests < 1 {
			fe.Add(at+".latency.min_requests", "must be positive")
		}
		if l.MinDifference < 0 {
			fe.Add(at+".latency.min_difference", "must be >= 0")
		}
	}
	if c.Consecutive5xx == 0 && c.ConsecutiveGatewayFailures == 0 && sr.StdevFactor == 0 && l.Factor == 0 {
		fe.Add(at, "enabled, but every rule is off: set consecutive_5xx, consecutive_gateway_failures, success_rate.stdev_factor or latency.factor")
	}
}

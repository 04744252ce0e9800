package main

import (
	"github.com/floodgate-dev/floodgate/filters/metrics"
	"github.com/floodgate-dev/floodgate/proxy/dashboard"
)

// dashboardSources reads the dashboard's document from the running parts.
func (rt *runtime) dashboardSources() *dashboard.Sources {
	return &dashboard.Sources{
		Shedder:  rt.shedder,
		Origins:  rt.origins,
		Limiters: rt.limiters,
		Metrics:  rt.metrics.Gatherer(),
	}
}

// rateLimitTables reports every rate-limit policy's bucket table for the
// metrics scrape.
func (rt *runtime) rateLimitTables() []metrics.RateLimitPolicy {
	stats := rt.limiters.Stats()
	out := make([]metrics.RateLimitPolicy, 0, len(stats))
	for _, s := range stats {
		out = append(out, metrics.RateLimitPolicy{Policy: s.Name, Keys: s.Keys, MaxKeys: s.MaxKeys,
			Overflowed: s.Overflowed, OverflowRejected: s.OverflowRejected})
	}
	return out
}

package main

import (
	"github.com/floodgate-dev/floodgate/proxy/dashboard"
)

// dashboardSources reads the dashboard's document from the running parts.
// The TimeSeries queues are shown when the store is open at start-up (a
// store first opened by a reload appears after a restart).
func (rt *runtime) dashboardSources() *dashboard.Sources {
	src := &dashboard.Sources{
		Shedder:  rt.shedder,
		Origins:  rt.origins,
		Limiters: rt.limiters,
		Metrics:  rt.metrics.Gatherer(),
	}
	if store := rt.store; store != nil {
		src.Extra = map[string]func() any{
			"timeseries async queues": func() any { return store.QueueStats() },
		}
	}
	return src
}

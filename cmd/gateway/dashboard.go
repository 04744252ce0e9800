package main

import (
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

package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of floodgate_connections_refused_total.
const RefusedMaxConnections = "max_connections"

// SetRefusedConnectionsSource makes floodgate_connections_refused_total
// {reason="max_connections"} report fn(): connections the listener
// answered 503 and closed before any request was read.
func (m *Metrics) SetRefusedConnectionsSource(fn func() uint64) { m.refused.src.Store(&fn) }

var (
	refusedDesc = prometheus.NewDesc(Namespace+"_connections_refused_total",
		"Client connections refused before any request was read, by reason (max_connections).", []string{"reason"}, nil)
)

// refusedCollector reports what the gateway refuses before any request
// exists: listener refusals.
type refusedCollector struct {
	src atomic.Pointer[func() uint64]
}

func (c *refusedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- refusedDesc
}

func (c *refusedCollector) Collect(ch chan<- prometheus.Metric) {
	var refused uint64
	if fn := c.src.Load(); fn != nil {
		refused = (*fn)()
	}
	// Present from the start, so an alert has a series before the first refusal.
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(refused), RefusedMaxConnections)
}

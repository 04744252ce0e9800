package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// chaosMetrics are chaos experiments' series (chaos.Observer): every
// request an experiment counts, by group, so the experiment group is
// compared with its control group.
type chaosMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newChaosMetrics(reg *prometheus.Registry) *chaosMetrics {
	c := &chaosMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "chaos_requests_total",
			Help: "Requests counted by a chaos experiment, by experiment, group (experiment or control) and outcome (injected, or the status category's group: success, client, origin, local).",
		}, []string{"experiment", "group", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "chaos_request_duration_seconds",
			Help:    "Duration of requests counted by a chaos experiment, by experiment and group.",
			Buckets: LatencyBuckets,
		}, []string{"experiment", "group"}),
	}
	reg.MustRegister(c.requests, c.duration)
	return c
}

// ObserveChaos records one request an experiment counted.
func (m *Metrics) ObserveChaos(experiment, group, outcome string, d time.Duration) {
	m.chaos.requests.WithLabelValues(experiment, group, outcome).Inc()
	m.chaos.duration.WithLabelValues(experiment, group).Observe(d.Seconds())
}

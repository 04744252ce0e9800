package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// shadowMetrics are traffic shadowing's series (proxy.ShadowObserver).
type shadowMetrics struct {
	requests       *prometheus.CounterVec
	match          *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	primaryLatency *prometheus.HistogramVec
}

func newShadowMetrics(reg *prometheus.Registry) *shadowMetrics {
	s := &shadowMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "shadow_requests_total",
			Help: "Sampled requests of a shadowing route, by result: sent (the shadow answered), error (it did not), skipped_concurrency, skipped_body.",
		}, []string{"route", "result"}),
		match: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "shadow_status_class_match_total",
			Help: "Shadow answers compared with their primary's, by whether the status classes (2xx, 4xx, ...) match.",
		}, []string{"route", "match"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "shadow_latency_seconds",
			Help:    "Shadow origins' time to response headers, by route.",
			Buckets: LatencyBuckets,
		}, []string{"route"}),
		primaryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "shadow_primary_latency_seconds",
			Help:    "The primary's time to response headers for the same mirrored requests as shadow_latency_seconds, by route.",
			Buckets: LatencyBuckets,
		}, []string{"route"}),
	}
	reg.MustRegister(s.requests, s.match, s.latency, s.primaryLatency)
	return s
}

// ObserveShadow counts one shadowing decision of route.
func (m *Metrics) ObserveShadow(route, result string) {
	m.shadow.requests.WithLabelValues(route, result).Inc()
}

// ObserveShadowComparison records a shadow's answer beside its primary's.
func (m *Metrics) ObserveShadowComparison(route string, match bool, primary, shadow time.Duration) {
	m.shadow.match.WithLabelValues(route, strconv.FormatBool(match)).Inc()
	m.shadow.latency.WithLabelValues(route).Observe(shadow.Seconds())
	m.shadow.primaryLatency.WithLabelValues(route).Observe(primary.Seconds())
}

package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TunnelDurationBuckets are the histogram buckets, in seconds, for how
// long a WebSocket tunnel stays open: from a refused-right-away second to
// a day-long socket.
var TunnelDurationBuckets = []float64{1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// tunnelMetrics are the WebSocket tunnel series: open tunnels, their
// lifetimes and the bytes they carry, by route.
type tunnelMetrics struct {
	open     *prometheus.GaugeVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

func newTunnelMetrics() *tunnelMetrics {
	return &tunnelMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "tunnels_open",
			Help: "WebSocket tunnels open (101 relayed, bytes flowing), by route.",
		}, []string{"route"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "tunnel_duration_seconds",
			Help:    "How long WebSocket tunnels stayed open, by route.",
			Buckets: TunnelDurationBuckets,
		}, []string{"route"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tunnel_bytes_total",
			Help: "Bytes relayed by WebSocket tunnels, by route and direction (to_origin, to_client).",
		}, []string{"route", "direction"}),
	}
}

func (t *tunnelMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{t.open, t.duration, t.bytes}
}

// TunnelOpened counts a tunnel opening on route.
func (m *Metrics) TunnelOpened(route string) { m.tunnels.open.WithLabelValues(route).Inc() }

// TunnelClosed counts a tunnel of route ending after d.
func (m *Metrics) TunnelClosed(route string, d time.Duration) {
	m.tunnels.open.WithLabelValues(route).Dec()
	m.tunnels.duration.WithLabelValues(route).Observe(d.Seconds())
}

// TunnelBytes counts n bytes a tunnel of route relayed.
func (m *Metrics) TunnelBytes(route string, toOrigin bool, n int) {
	dir := "to_client"
	if toOrigin {
		dir = "to_origin"
	}
	m.tunnels.bytes.WithLabelValues(route, dir).Add(float64(n))
}

package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// RateLimitPolicy is one rate-limit policy's bucket table, read at scrape
// time.
type RateLimitPolicy struct {
	Policy string
	// Keys is the number of keys tracked now; MaxKeys the policy's cap.
	Keys    int64
	MaxKeys int
	// Overflowed counts requests that used the shared overflow bucket
	// because MaxKeys keys were tracked; OverflowRejected those of them it
	// refused.
	Overflowed       uint64
	OverflowRejected uint64
}

// Reasons of floodgate_connections_refused_total.
const RefusedMaxConnections = "max_connections"

// SetRefusedConnectionsSource makes floodgate_connections_refused_total
// {reason="max_connections"} report fn(): connections the listener
// answered 503 and closed before any request was read.
func (m *Metrics) SetRefusedConnectionsSource(fn func() uint64) { m.ops.refused.Store(&fn) }

// SetRateLimitSource makes the floodgate_rate_limit_* table metrics report
// fn() at each scrape.
func (m *Metrics) SetRateLimitSource(fn func() []RateLimitPolicy) { m.ops.rateLimits.Store(&fn) }

var (
	refusedDesc = prometheus.NewDesc(Namespace+"_connections_refused_total",
		"Client connections refused before any request was read, by reason (max_connections).", []string{"reason"}, nil)
	rlKeysDesc = prometheus.NewDesc(Namespace+"_rate_limit_keys",
		"Keys a rate-limit policy tracks now, by policy.", []string{"policy"}, nil)
	rlMaxKeysDesc = prometheus.NewDesc(Namespace+"_rate_limit_max_keys",
		"The policy's max_keys: past it new keys share one overflow bucket.", []string{"policy"}, nil)
	rlOverflowDesc = prometheus.NewDesc(Namespace+"_rate_limit_overflow_total",
		"Requests that used a policy's shared overflow bucket because max_keys keys were tracked, by policy.", []string{"policy"}, nil)
	rlOverflowRejectedDesc = prometheus.NewDesc(Namespace+"_rate_limit_overflow_rejected_total",
		"Requests the overflow bucket refused, by policy.", []string{"policy"}, nil)
)

// opsCollector reports what the gateway refuses or tracks outside the
// request metrics: listener refusals and rate-limit tables.
type opsCollector struct {
	refused    atomic.Pointer[func() uint64]
	rateLimits atomic.Pointer[func() []RateLimitPolicy]
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- refusedDesc
	ch <- rlKeysDesc
	ch <- rlMaxKeysDesc
	ch <- rlOverflowDesc
	ch <- rlOverflowRejectedDesc
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	var refused uint64
	if fn := c.refused.Load(); fn != nil {
		refused = (*fn)()
	}
	// Present from the start, so an alert has a series before the first refusal.
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(refused), RefusedMaxConnections)
	fn := c.rateLimits.Load()
	if fn == nil {
		return
	}
	seen := map[string]bool{}
	for _, p := range (*fn)() {
		if seen[p.Policy] {
			continue
		}
		seen[p.Policy] = true
		ch <- prometheus.MustNewConstMetric(rlKeysDesc, prometheus.GaugeValue, float64(p.Keys), p.Policy)
		ch <- prometheus.MustNewConstMetric(rlMaxKeysDesc, prometheus.GaugeValue, float64(p.MaxKeys), p.Policy)
		ch <- prometheus.MustNewConstMetric(rlOverflowDesc, prometheus.CounterValue, float64(p.Overflowed), p.Policy)
		ch <- prometheus.MustNewConstMetric(rlOverflowRejectedDesc, prometheus.CounterValue, float64(p.OverflowRejected), p.Policy)
	}
}

package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ObserveOriginAttempt records one attempt to an origin instance: its
// outcome (a short snake_case word such as success, connect_error,
// timeout, reset, status_5xx, canceled) and its duration.
func (m *Metrics) ObserveOriginAttempt(origin, instance, outcome string, d time.Duration) {
	s := m.attemptSeries.get(attemptLabels{origin, instance, outcome}, m.newAttemptSeries)
	s.count.Inc()
	s.observe.Observe(d.Seconds())
}

// attemptLabels are an attempt's label values (seriesCache).
type attemptLabels struct{ origin, instance, outcome string }

func (m *Metrics) newAttemptSeries(l attemptLabels) countedSeries {
	return countedSeries{m.originRequests.WithLabelValues(l.origin, l.instance, l.outcome), m.originLatency.WithLabelValues(l.origin)}
}

// IncRetry counts a retry attempt to origin.
func (m *Metrics) IncRetry(origin string) { m.retries.WithLabelValues(origin).Inc() }

// IncHedge counts a hedged attempt to origin.
func (m *Metrics) IncHedge(origin string) { m.hedges.WithLabelValues(origin).Inc() }

// ForgetInstance deletes the per-instance request counters of an instance
// that left its origin (discovery churn would otherwise grow the series
// forever). Gauges need no cleanup: they are read from the source.
func (m *Metrics) ForgetInstance(origin, instance string) {
	m.attemptSeries.forget(func(l attemptLabels) bool { return l.origin == origin && l.instance == instance }, func() {
		m.originRequests.DeletePartialMatch(prometheus.Labels{"origin": origin, "instance": instance})
	})
}

// Breaker states as exported by floodgate_origin_breaker_state.
const (
	BreakerClosed   = 0
	BreakerHalfOpen = 1
	BreakerOpen     = 2
)

// InstanceState is one origin instance's live state, read at scrape time.
type InstanceState struct {
	Origin   string
	Instance string
	InFlight int64
	// BreakerState is BreakerClosed, BreakerHalfOpen or BreakerOpen.
	BreakerState int
}

// SetInstanceSource makes floodgate_origin_in_flight and
// floodgate_origin_breaker_state report fn() at each scrape. Reading live
// state, rather than having callers set gauges, means an instance that
// discovery removed simply stops being reported, and the request path
// pays nothing.
func (m *Metrics) SetInstanceSource(fn func() []InstanceState) { m.instances.Store(&fn) }

var (
	originInFlightDesc = prometheus.NewDesc(Namespace+"_origin_in_flight",
		"Attempts in flight to an origin instance.", []string{"origin", "instance"}, nil)
	breakerStateDesc = prometheus.NewDesc(Namespace+"_origin_breaker_state",
		"Circuit breaker state of an origin instance: 0 closed, 1 half-open, 2 open.", []string{"origin", "instance"}, nil)
)

type instanceCollector struct{ m *Metrics }

func (c *instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- originInFlightDesc
	ch <- breakerStateDesc
}

func (c *instanceCollector) Collect(ch chan<- prometheus.Metric) {
	fn := c.m.instances.Load()
	if fn == nil {
		return
	}
	type key struct{ origin, instance string }
	seen := map[key]bool{}
	for _, s := range (*fn)() {
		// A duplicate would fail the whole scrape; report the first.
		k := key{s.Origin, s.Instance}
		if seen[k] {
			continue
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(originInFlightDesc, prometheus.GaugeValue, float64(s.InFlight), s.Origin, s.Instance)
		ch <- prometheus.MustNewConstMetric(breakerStateDesc, prometheus.GaugeValue, float64(s.BreakerState), s.Origin, s.Instance)
	}
}

package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/floodgate-dev/floodgate/filters"
)

// Namespace prefixes every Floodgate metric.
const Namespace = "floodgate"

// LatencyBuckets are the histogram buckets, in seconds, for request and
// origin latency: fine below 100 ms where a gateway's own overhead and
// healthy origins live, coarse up to a minute for slow uploads and
// long-polls.
var LatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics is the gateway's instrumentation. It is long-lived: create one
// at start-up and keep it across config reloads so counters never reset.
// All methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	originRequests  *prometheus.CounterVec
	originLatency   *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	hedges          *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	configReloads   *prometheus.CounterVec
	tunnels         *tunnelMetrics

	inFlight  atomic.Pointer[func() int64]
	openConns atomic.Pointer[func() int64]
	instances atomic.Pointer[func() []InstanceState]
	shed      atomic.Pointer[func() []ShedScope]
	refused   *refusedCollector
	shadow    *shadowMetrics
	chaos     *chaosMetrics

	// requestSeries and attemptSeries keep the per-request series by
	// label values, so the hot path skips WithLabelValues.
	requestSeries seriesCache[requestLabels, countedSeries]
	attemptSeries seriesCache[attemptLabels, countedSeries]

	// observe is ObserveRequest as a func value made once, so installing
	// it as a completion hook does not allocate per request.
	observe func(*filters.Context)
}

// New creates the metrics and registers them, with the Go runtime,
// process and build-info collectors, in a private registry: the global
// default registry would mix in whatever any imported library registers.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), refused: &refusedCollector{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Client requests completed, by route name, HTTP status class and Floodgate status category.",
	}, []string{"route", "code_class", "category"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds",
		Help:    "Time from receiving a request to finishing its response body, by route name.",
		Buckets: LatencyBuckets,
	}, []string{"route"})
	m.originRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "origin_requests_total",
		Help: "Attempts sent to origin instances, by origin, instance address and outcome.",
	}, []string{"origin", "instance", "outcome"})
	m.originLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "origin_latency_seconds",
		Help:    "Duration of attempts to an origin's instances, by origin.",
		Buckets: LatencyBuckets,
	}, []string{"origin"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "retries_total",
		Help: "Retry attempts started after a failed attempt, by origin.",
	}, []string{"origin"})
	m.hedges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "hedges_total",
		Help: "Hedged attempts started while an earlier attempt was still in flight, by origin.",
	}, []string{"origin"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rate_limited_total",
		Help: "Requests rejected with 429 by a rate-limit policy, by policy name.",
	}, []string{"policy"})
	m.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "config_reloads_total",
		Help: "Config reload attempts, by result (success or failure).",
	}, []string{"result"})
	// Both results exist from the start so an alert on failures has a
	// series to evaluate before the first failure.
	m.configReloads.WithLabelValues(ReloadSuccess)
	m.configReloads.WithLabelValues(ReloadFailure)
	m.tunnels = newTunnelMetrics()
	m.reg.MustRegister(m.tunnels.collectors()...)

	m.reg.MustRegister(
		m.requests, m.requestDuration, m.originRequests, m.originLatency,
		m.retries, m.hedges, m.rateLimited, m.configReloads,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "requests_in_flight",
			Help: "Client requests received and not yet completed.",
		}, func() float64 { return readSource(&m.inFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "open_connections",
			Help: "Client connections currently open.",
		}, func() float64 { return readSource(&m.openConns) }),
		&instanceCollector{m: m},
		&shedCollector{m: m},
		m.refused,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	m.shadow = newShadowMetrics(m.reg)
	m.chaos = newChaosMetrics(m.reg)
	m.observe = m.ObserveRequest
	return m
}

func readSource(p *atomic.Pointer[func() int64]) float64 {
	if fn := p.Load(); fn != nil {
		return float64((*fn)())
	}
	return 0
}

// Registry returns the registry, for packages that add collectors of
// their own (name them floodgate_*).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetInFlightSource makes floodgate_requests_in_flight report fn() at
// scrape time; the proxy already counts in-flight requests for shedding,
// so the gauge reads that counter instead of keeping a second one.
func (m *Metrics) SetInFlightSource(fn func() int64) { m.inFlight.Store(&fn) }

// SetOpenConnectionsSource makes floodgate_open_connections report fn().
func (m *Metrics) SetOpenConnectionsSource(fn func() int64) { m.openConns.Store(&fn) }

package metrics

import "github.com/prometheus/client_golang/prometheus"

// RegisterAcceptErrors adds floodgate_accept_errors_total, read from fn at
// scrape time: accept() failures the client listener survived (file
// descriptors or buffers exhausted) by backing off and retrying. Call it
// once, when the server starts.
func (m *Metrics) RegisterAcceptErrors(fn func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Name: "accept_errors_total",
		Help: "Times accepting a client connection failed for lack of resources (e.g. EMFILE) and was retried after a back-off.",
	}, func() float64 { return float64(fn()) }))
}

// RegisterDiscoveryEmptyKept adds floodgate_discovery_empty_kept_total
// {origin} and returns the function that counts one: discovery answered
// with no instances and the origin kept its last non-empty set. Call it
// once, when wiring the origin registry.
func (m *Metrics) RegisterDiscoveryEmptyKept() func(origin string) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "discovery_empty_kept_total",
		Help: "Times service discovery reported no instances for an origin and the last non-empty set was kept (consul.allow_empty off).",
	}, []string{"origin"})
	m.reg.MustRegister(vec)
	return func(origin string) { vec.WithLabelValues(origin).Inc() }
}

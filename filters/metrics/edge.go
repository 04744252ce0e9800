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

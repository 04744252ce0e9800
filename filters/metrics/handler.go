package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics when the scraper asks for it), instrumented with
// promhttp_metric_handler_* metrics. A collector error is reported in
// promhttp_metric_handler_errors_total while the rest is still served, so
// one broken source never blanks the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		EnableOpenMetrics:   true,
	}))
}

// FastHTTPHandler is Handler for a fasthttp listener such as the admin
// server's /metrics route.
func (m *Metrics) FastHTTPHandler() fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(m.Handler())
}

// Gatherer exposes the registry for tests and tooling.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

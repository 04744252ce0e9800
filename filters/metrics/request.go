package metrics

import (
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

// NoRoute is the route label of requests that matched no route.
const NoRoute = "none"

// Config reload results, the values of config_reloads_total's label.
const (
	ReloadSuccess = "success"
	ReloadFailure = "failure"
)

var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// CodeClass maps an HTTP status to its class label, "other" for anything
// outside 100..599 (0 when a client left before a status was chosen).
func CodeClass(status int) string {
	if status >= 100 && status < 600 {
		return codeClasses[status/100-1]
	}
	return "other"
}

// ObserveRequest records one completed client request. It reads only the
// Context's copied fields, so it is safe as an OnDone hook after the
// handler has returned.
func (m *Metrics) ObserveRequest(c *filters.Context) {
	route := NoRoute
	if c.Route != nil && c.Route.Name != "" {
		route = c.Route.Name
	}
	category := string(c.Category)
	if category == "" {
		category = "unknown"
	}
	end := c.End
	if end.IsZero() {
		end = time.Now()
	}
	s := m.requestSeries.get(requestLabels{route, CodeClass(c.Status), category}, m.newRequestSeries)
	s.count.Inc()
	s.observe.Observe(end.Sub(c.Start).Seconds())
}

// requestLabels are a request's label values (seriesCache).
type requestLabels struct{ route, codeClass, category string }

func (m *Metrics) newRequestSeries(l requestLabels) countedSeries {
	return countedSeries{m.requests.WithLabelValues(l.route, l.codeClass, l.category), m.requestDuration.WithLabelValues(l.route)}
}

// Hook returns ObserveRequest as a completion hook for c.OnDone, made once
// so installing it per request does not allocate.
func (m *Metrics) Hook() func(*filters.Context) { return m.observe }

// IncRateLimited counts one request rejected by policy. It matches
// ratelimit.Options.OnReject.
func (m *Metrics) IncRateLimited(policy string) { m.rateLimited.WithLabelValues(policy).Inc() }

// ConfigReload counts one reload attempt.
func (m *Metrics) ConfigReload(ok bool) {
	if ok {
		m.configReloads.WithLabelValues(ReloadSuccess).Inc()
		return
	}
	m.configReloads.WithLabelValues(ReloadFailure).Inc()
}

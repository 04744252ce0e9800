package metrics

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
	"github.com/floodgate-dev/floodgate/routing"
)

// pathEndpoint answers by path, standing in for the proxy endpoint.
type pathEndpoint struct {
	entered chan struct{}
	release chan struct{}
}

func (pathEndpoint) Name() string                       { return "test_endpoint" }
func (pathEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (pathEndpoint) Order() int                         { return 0 }
func (pathEndpoint) ShouldFilter(*filters.Context) bool { return true }
func (e pathEndpoint) Apply(c *filters.Context) error {
	switch c.Path {
	case "/api/slow":
		e.entered <- struct{}{}
		<-e.release
	case "/api/fail":
		c.Origin, c.Instance = "users", "10.0.0.1:80"
		c.Request.Response.SetStatusCode(http.StatusBadGateway)
		c.MarkResponded(http.StatusBadGateway, filters.CategoryOriginConnectError)
		return nil
	}
	c.Request.Response.SetBodyString("ok")
	c.MarkResponded(http.StatusOK, filters.CategorySuccess)
	return nil
}

// noRoute answers 404 like the gateway's no-route chain.
type noRoute struct{}

func (noRoute) Name() string                       { return "test_no_route" }
func (noRoute) Stage() filters.Stage               { return filters.Inbound }
func (noRoute) Order() int                         { return 0 }
func (noRoute) ShouldFilter(*filters.Context) bool { return true }
func (noRoute) Apply(c *filters.Context) error {
	c.Respond(http.StatusNotFound, filters.CategoryNoRoute, "no route")
	return nil
}

type gateway struct {
	url      string
	inFlight atomic.Int64
	ep       pathEndpoint
}

// startGateway serves a route chain for /api/* and a no-route chain for
// everything else, each ending with the "metrics" filter built from the
// registry, the way the proxy's driver will.
func startGateway(t *testing.T, m *Metrics) *gateway {
	t.Helper()
	svc := &filters.Services{}
	ServiceKey.Provide(svc, m)
	mf, err := filters.Default.Build(&filters.Env{Path: "filters[0]", Services: svc}, FilterName, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{ep: pathEndpoint{entered: make(chan struct{}), release: make(chan struct{})}}
	b := filters.NewChainBuilder()
	apiChain, err := b.Build([]filters.Filter{mf, g.ep})
	if err != nil {
		t.Fatal(err)
	}
	noRouteChain, err := b.Build([]filters.Filter{mf, noRoute{}})
	if err != nil {
		t.Fatal(err)
	}
	api := &routing.Route{Name: "api"}
	m.SetInFlightSource(g.inFlight.Load)
	g.url = chaintest.Serve(t, nil, chaintest.Options{
		Prepare: func(c *filters.Context) {
			g.inFlight.Add(1)
			c.OnDone(func(*filters.Context) { g.inFlight.Add(-1) })
		},
		Choose: func(c *filters.Context) *filters.Chain {
			if strings.HasPrefix(c.Path, "/api/") {
				c.Route = api
				return apiChain
			}
			return noRouteChain
		},
	})
	return g
}

func httpGet(t *testing.T, cl *http.Client, url string) int {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Error(err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func scrape(t *testing.T, cl *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := cl.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value finds the sample of family name whose labels include want and
// returns its counter/gauge value or histogram count.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := len(labels) == len(want)
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("%s%v not found in %v", name, want, f.Metric)
	return 0
}

func TestMetricsAfterRealTraffic(t *testing.T) {
	m := New()
	g := startGateway(t, m)
	admin := chaintest.ServeHandler(t, m.FastHTTPHandler(), nil)
	cl := newClient(t)

	for range 3 {
		if s := httpGet(t, cl, g.url+"/api/ok"); s != 200 {
			t.Fatalf("status %d", s)
		}
	}
	for range 2 {
		httpGet(t, cl, g.url+"/api/fail")
	}
	httpGet(t, cl, g.url+"/unknown/path/123")

	// A request held inside the endpoint shows up as in flight.
	slow := make(chan int)
	go func() { slow <- httpGet(t, cl, g.url+"/api/slow") }()
	<-g.ep.entered
	fams := scrape(t, cl, admin)
	if v := value(t, fams, "floodgate_requests_in_flight", nil); v != 1 {
		t.Fatalf("in flight %v, want 1", v)
	}
	close(g.ep.release)
	if s := <-slow; s != 200 {
		t.Fatalf("slow status %d", s)
	}

	m.ObserveOriginAttempt("users", "10.0.0.1:80", "connect_error", 3*time.Millisecond)
	m.ObserveOriginAttempt("users", "10.0.0.2:80", "success", 20*time.Millisecond)
	m.IncRetry("users")
	m.IncHedge("users")
	m.IncRateLimited("api")
	m.ConfigReload(true)
	m.ConfigReload(false)
	m.ConfigReload(false)
	m.SetOpenConnectionsSource(func() int64 { return 5 })
	m.SetInstanceSource(func() []InstanceState {
		return []InstanceState{
			{Origin: "users", Instance: "10.0.0.1:80", InFlight: 2, BreakerState: BreakerOpen},
			{Origin: "users", Instance: "10.0.0.1:80", InFlight: 9}, // duplicate: ignored
			{Origin: "users", Instance: "10.0.0.2:80", InFlight: 1, BreakerState: BreakerClosed},
		}
	})
	m.SetShedSource(func() []ShedScope {
		return []ShedScope{
			{Scope: "global", Overload: 0.8, Cutoff: 48.8, Shed: []BandCount{{"90-100", 12}, {"80-89", 3}}},
			{Scope: "users", Overload: 0.1, Cutoff: 99.9, WouldShed: []BandCount{{"90-100", 4}}},
		}
	})

	fams = scrape(t, cl, admin)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"floodgate_requests_total", map[string]string{"route": "api", "code_class": "2xx", "category": "success"}, 4},
		{"floodgate_requests_total", map[string]string{"route": "api", "code_class": "5xx", "category": "origin_connect_error"}, 2},
		{"floodgate_requests_total", map[string]string{"route": "none", "code_class": "4xx", "category": "no_route"}, 1},
		{"floodgate_request_duration_seconds", map[string]string{"route": "api"}, 6},
		{"floodgate_request_duration_seconds", map[string]string{"route": "none"}, 1},
		{"floodgate_requests_in_flight", nil, 0},
		{"floodgate_open_connections", nil, 5},
		{"floodgate_origin_requests_total", map[string]string{"origin": "users", "instance": "10.0.0.1:80", "outcome": "connect_error"}, 1},
		{"floodgate_origin_latency_seconds", map[string]string{"origin": "users"}, 2},
		{"floodgate_origin_in_flight", map[string]string{"origin": "users", "instance": "10.0.0.1:80"}, 2},
		{"floodgate_origin_breaker_state", map[string]string{"origin": "users", "instance": "10.0.0.1:80"}, BreakerOpen},
		{"floodgate_origin_breaker_state", map[string]string{"origin": "users", "instance": "10.0.0.2:80"}, BreakerClosed},
		{"floodgate_retries_total", map[string]string{"origin": "users"}, 1},
		{"floodgate_hedges_total", map[string]string{"origin": "users"}, 1},
		{"floodgate_rate_limited_total", map[string]string{"policy": "api"}, 1},
		{"floodgate_shed_total", map[string]string{"scope": "global", "band": "90-100"}, 12},
		{"floodgate_shed_would_total", map[string]string{"scope": "users", "band": "90-100"}, 4},
		{"floodgate_shed_cutoff", map[string]string{"scope": "global"}, 48.8},
		{"floodgate_shed_overload", map[string]string{"scope": "users"}, 0.1},
		{"floodgate_config_reloads_total", map[string]string{"result": "success"}, 1},
		{"floodgate_config_reloads_total", map[string]string{"result": "failure"}, 2},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_open_fds", "go_build_info"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	// Bounded cardinality: the raw path never became a label value.
	for name, f := range fams {
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if strings.Contains(l.GetValue(), "/unknown") {
					t.Errorf("%s carries a raw path label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
		if strings.HasPrefix(name, "floodgate_") && f.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}

	m.ForgetInstance("users", "10.0.0.1:80")
	fams = scrape(t, cl, admin)
	for _, s := range fams["floodgate_origin_requests_total"].Metric {
		for _, l := range s.Label {
			if l.GetValue() == "10.0.0.1:80" {
				t.Fatal("forgotten instance still reported")
			}
		}
	}
	// An instance that comes back is counted afresh, in a series the
	// registry exports (not in one the cache kept from before).
	m.ObserveOriginAttempt("users", "10.0.0.1:80", "connect_error", time.Millisecond)
	fams = scrape(t, cl, admin)
	if got := value(t, fams, "floodgate_origin_requests_total", map[string]string{"origin": "users", "instance": "10.0.0.1:80", "outcome": "connect_error"}); got != 1 {
		t.Fatalf("returning instance counted %v, want 1", got)
	}
}

func TestCodeClass(t *testing.T) {
	for status, want := range map[int]string{0: "other", 99: "other", 100: "1xx", 204: "2xx", 308: "3xx", 429: "4xx", 599: "5xx", 600: "other"} {
		if got := CodeClass(status); got != want {
			t.Errorf("CodeClass(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestFilterNeedsService(t *testing.T) {
	_, err := filters.Default.Build(&filters.Env{Path: "filters[3]", Services: &filters.Services{}}, FilterName, nil)
	if err == nil || !strings.Contains(err.Error(), "filters[3]: metrics needs") {
		t.Fatalf("error %v", err)
	}
	_, err = filters.Default.Build(&filters.Env{Path: "filters[3]", Services: &filters.Services{}}, FilterName, map[string]any{"x": 1})
	if err == nil || !strings.Contains(err.Error(), "filters[3].options") {
		t.Fatalf("unknown option accepted: %v", err)
	}
}

func TestObserveRequestWithoutRouteOrCategory(t *testing.T) {
	m := New()
	c := filters.AcquireContext()
	c.Start = time.Now().Add(-time.Second)
	m.ObserveRequest(c)
	c.Release()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "floodgate_requests_total" {
			got := fmt.Sprint(f.Metric[0].Label)
			if !strings.Contains(got, `"unknown"`) || !strings.Contains(got, `"none"`) || !strings.Contains(got, `"other"`) {
				t.Fatalf("labels %s", got)
			}
			return
		}
	}
	t.Fatal("not recorded")
}

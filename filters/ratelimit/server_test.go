package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/routing"
)

// okEndpoint answers 200 "ok" like a trivial origin would.
type okEndpoint struct{}

func (okEndpoint) Name() string                       { return "test_ok" }
func (okEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (okEndpoint) Order() int                         { return 0 }
func (okEndpoint) ShouldFilter(*filters.Context) bool { return true }
func (okEndpoint) Apply(c *filters.Context) error {
	// Reset like a forwarding endpoint copying an origin's response does,
	// so the test proves headers survive it only via the outbound filter.
	c.Request.Response.Reset()
	c.Request.Response.SetBodyString("ok")
	c.MarkResponded(http.StatusOK, filters.CategorySuccess)
	return nil
}

// clientIPHeader lets a test choose the client address per request.
const clientIPHeader = "X-Test-Client-IP"

// startServer serves chain on 127.0.0.1 with a minimal stand-in for the
// gateway's request driver.
func startServer(t *testing.T, chain *filters.Chain, route *routing.Route) string {
	t.Helper()
	return startServerHook(t, chain, route, nil)
}

// startServerHook is startServer with a completion hook registered on
// every request before the chain runs.
func startServerHook(t *testing.T, chain *filters.Chain, route *routing.Route, done func(*filters.Context)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A short idle-worker period lets the worker pool's cleaner notice
	// Shutdown promptly instead of sleeping 10 s past the test.
	srv := &fasthttp.Server{MaxIdleWorkerDuration: 10 * time.Millisecond, Handler: func(rc *fasthttp.RequestCtx) {
		c := filters.AcquireContext()
		defer c.Release()
		c.Request = rc
		c.Method = string(rc.Method())
		c.Host = string(rc.Host())
		c.Path = string(rc.Path())
		c.ClientIP, _ = netip.AddrFromSlice(rc.RemoteIP())
		if v := rc.Request.Header.Peek(clientIPHeader); len(v) > 0 {
			c.ClientIP = netip.MustParseAddr(string(v))
		}
		c.Route = route
		if done != nil {
			c.OnDone(done)
		}
		chain.Run(c)
		c.ApplyResponseHeaders()
	}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

// newClient returns an HTTP client whose idle connections are closed when
// the test ends, so no transport goroutine outlives it.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// buildChain builds filters by name from the Default registry with the
// given services, plus the test endpoint.
func buildChain(t *testing.T, svc *filters.Services, specs ...spec2) *filters.Chain {
	t.Helper()
	fs := []filters.Filter{okEndpoint{}}
	for i, s := range specs {
		f, err := filters.Default.Build(&filters.Env{Path: "filters[" + string(rune('0'+i)) + "]", Services: svc}, s.name, s.opts)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	ch, err := filters.NewChainBuilder().Build(fs)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

type spec2 struct {
	name string
	opts map[string]any
}

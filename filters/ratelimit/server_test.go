package ratelimit

import (
	"github.com/floodgate-dev/floodgate/trust"

	"net/http"
	"net/netip"
	"testing"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
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
	return chaintest.Serve(t, chain, chaintest.Options{Prepare: func(c *filters.Context) {
		if v := c.RequestHeader(clientIPHeader); len(v) > 0 {
			ip := netip.MustParseAddr(string(v))
			c.SetIdentity(trust.Identity{Peer: ip, Client: ip})
		}
		c.Route = route
		if done != nil {
			c.OnDone(done)
		}
	}})
}

// newClient returns an HTTP client that leaves no goroutine behind.
func newClient(t *testing.T) *http.Client { return chaintest.Client(t) }

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

// Package chaintest owns the test harness filter packages share: a real
// fasthttp server on loopback that drives a filter chain the way the
// gateway's request driver does, so filters are tested over real HTTP
// without the whole gateway.
package chaintest

import (
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/proxy/edge"
)

// Options tune Serve.
type Options struct {
	// Prepare fills per-test Context fields (route, client address,
	// priority, hooks) after the driver's own and before the chain runs.
	Prepare func(c *filters.Context)
	// Choose picks the chain of a request (after Prepare), as the
	// gateway's router does; nil serves the chain given to Serve.
	Choose func(c *filters.Context) *filters.Chain
	// Tune adjusts the server, e.g. to stream request bodies as the
	// gateway does.
	Tune func(s *fasthttp.Server)
}

// Serve runs chain for every request on a real fasthttp server on
// 127.0.0.1 and returns its base URL. Requests go through the gateway's
// own request driver (filters.Drive: Method, Host and ClientIP filled,
// panics turned into 500s, response headers applied, the Context released
// with its OnDone hooks once the body is complete); the harness adds only
// the path and opts.Prepare. The server stops when the test ends.
func Serve(t testing.TB, chain *filters.Chain, opts Options) string {
	t.Helper()
	d := dispatcher{t: t, chain: chain, prepare: opts.Prepare, choose: opts.Choose}
	return ServeHandler(t, func(rc *fasthttp.RequestCtx) { filters.Drive(rc, d) }, opts.Tune)
}

// ServeHandler serves h on a real fasthttp server on 127.0.0.1 until the
// test ends and returns its base URL.
func ServeHandler(t testing.TB, h fasthttp.RequestHandler, tune func(*fasthttp.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's own server options (header names kept as sent, no
	// default Content-Type, streamed bodies), so a filter that works here
	// works in production.
	srv := edge.NewServer(h, edge.Limits{})
	// A short idle-worker period lets the worker pool's sweeper notice
	// Shutdown promptly instead of sleeping 10 s past the test; it changes
	// no HTTP behaviour.
	srv.MaxIdleWorkerDuration = 10 * time.Millisecond
	if tune != nil {
		tune(srv)
	}
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

// Client returns an HTTP client whose idle connections are closed when the
// test ends, so no transport goroutine outlives it.
func Client(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// MustAddr parses an address literal for Prepare functions.
func MustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// dispatcher is the harness's part of the driver: one chain for every
// request.
type dispatcher struct {
	t       testing.TB
	chain   *filters.Chain
	prepare func(c *filters.Context)
	choose  func(c *filters.Context) *filters.Chain
}

func (d dispatcher) Dispatch(c *filters.Context) *filters.Chain {
	// As the gateway sets it: a view of the Context's own buffer.
	c.SetPath(c.Request.Path())
	if d.prepare != nil {
		d.prepare(c)
	}
	if d.choose != nil {
		return d.choose(c)
	}
	return d.chain
}

func (d dispatcher) Recovered(c *filters.Context, v any) {
	d.t.Logf("panic serving %s %s: %v", c.Method, c.Path, v)
}

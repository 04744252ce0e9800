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
)

// Options tune Serve.
type Options struct {
	// Prepare fills per-test Context fields (route, client address,
	// priority, hooks) after the driver's own and before the chain runs.
	Prepare func(c *filters.Context)
	// Tune adjusts the server, e.g. to stream request bodies as the
	// gateway does.
	Tune func(s *fasthttp.Server)
}

// Serve runs chain for every request on a real fasthttp server on
// 127.0.0.1 and returns its base URL. Like the gateway's driver it fills
// Method, Host, Path and ClientIP, runs the chain, applies the response
// headers filters asked for, and releases the Context (its OnDone hooks
// run once the response body is complete). The server stops when the test
// ends.
func Serve(t testing.TB, chain *filters.Chain, opts Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		// A short idle-worker period lets the worker pool's sweeper notice
		// Shutdown promptly instead of sleeping 10 s past the test.
		MaxIdleWorkerDuration: 10 * time.Millisecond,
		Handler: func(rc *fasthttp.RequestCtx) {
			c := filters.AcquireContext()
			c.Request = rc
			c.Method = string(rc.Method())
			c.Host = string(rc.Host())
			c.Path = string(rc.Path())
			if a, ok := rc.RemoteAddr().(*net.TCPAddr); ok {
				c.ClientIP = a.AddrPort().Addr().Unmap()
			}
			if opts.Prepare != nil {
				opts.Prepare(c)
			}
			chain.Run(c)
			c.ApplyResponseHeaders()
			c.Request = nil
			c.Release()
		},
	}
	if opts.Tune != nil {
		opts.Tune(srv)
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

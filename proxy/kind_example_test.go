package proxy

import (
	"errors"
	"net/http"
	"testing"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
)

// This file is the whole of a new endpoint kind, "redirect", as
// docs/ARCHITECTURE.md describes adding one: options with defaults and
// validation, the endpoint, and one registration line (here into a test
// registry; a real kind calls filters.RegisterEndpoint from its package's
// init and cmd/gateway/imports.go imports the package).

type redirectOptions struct {
	To     string `mapstructure:"to"`
	Status int    `mapstructure:"status"`
}

func (o redirectOptions) Validate() error {
	if o.To == "" {
		return errors.New("to: required")
	}
	return nil
}

type redirectEndpoint struct {
	filters.Base
	opts redirectOptions
}

func (e *redirectEndpoint) Apply(c *filters.Context) error {
	c.Request.Response.Header.Set("Location", e.opts.To)
	c.Respond(e.opts.Status, filters.CategorySuccess, "")
	return nil
}

func registerRedirect(r *filters.Registry) {
	filters.RegisterEndpointIn(r, "redirect", func() redirectOptions { return redirectOptions{Status: http.StatusFound} },
		func(_ *filters.Env, o redirectOptions) (filters.Filter, error) {
			return &redirectEndpoint{Base: filters.EndpointBase("redirect"), opts: o}, nil
		})
}

func TestNewEndpointKindInOneFile(t *testing.T) {
	cfg := parse(t, `
routes:
  - {name: old, match: {path: /old}, redirect: {to: /new, status: 301}}
`)
	b := testBuilder(t, cfg)
	registerRedirect(b.Registry)
	snap, err := b.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := chaintest.Client(t)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(chaintest.Serve(t, snap.Chains[0], chaintest.Options{}) + "/old")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/new" {
		t.Errorf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	bad := parse(t, "routes:\n  - {name: old, match: {path: /old}, redirect: {status: 301}}\n")
	if _, err := b.Build(bad); err == nil || err.Error() != "invalid config: routes[0].redirect.to: required" {
		t.Errorf("err = %v", err)
	}
}

package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/floodgate-dev/floodgate/filters"
)

func init() {
	filters.RegisterEndpoint("static", func() StaticOptions { return StaticOptions{Status: http.StatusOK} }, newStaticEndpoint)
}

// StaticOptions configure the "static" endpoint kind: a fixed response.
type StaticOptions struct {
	Status  int            `mapstructure:"status"`
	Body    string         `mapstructure:"body"`
	Headers []StaticHeader `mapstructure:"headers"`
}

// StaticHeader is a name/value pair; a list keeps the header name's case.
type StaticHeader struct {
	Name  string `mapstructure:"name"`
	Value string `mapstructure:"value"`
}

// Validate checks the options; paths are relative to the route's static key.
func (o StaticOptions) Validate() error {
	var errs []error
	if o.Status < 100 || o.Status > 599 {
		errs = append(errs, fmt.Errorf("status: must be an HTTP status 100..599, got %d", o.Status))
	}
	for j, h := range o.Headers {
		if h.Name == "" || strings.ContainsAny(h.Name+h.Value, "\r\n") {
			errs = append(errs, fmt.Errorf("headers[%d]: invalid header", j))
		}
	}
	return errors.Join(errs...)
}

// staticEndpoint answers with a fixed response from config.
type staticEndpoint struct {
	filters.Base
	opts StaticOptions
	body []byte
}

func newStaticEndpoint(_ *filters.Env, o StaticOptions) (filters.Filter, error) {
	return &staticEndpoint{Base: filters.EndpointBase("static"), opts: o, body: []byte(o.Body)}, nil
}

func (e *staticEndpoint) Apply(c *filters.Context) error {
	resp := &c.Request.Response
	resp.SetStatusCode(e.opts.Status)
	for _, h := range e.opts.Headers {
		resp.Header.Set(h.Name, h.Value)
	}
	resp.SetBodyRaw(e.body)
	c.BytesOut = int64(len(e.body))
	c.MarkResponded(e.opts.Status, filters.CategorySuccess)
	return nil
}

// Describe is the endpoint's admin view.
func (e *staticEndpoint) Describe() any {
	return map[string]any{"status": e.opts.Status, "headers": len(e.opts.Headers), "body_bytes": len(e.body)}
}

// notFoundEndpoint ends the chain of requests no route matched.
type notFoundEndpoint struct{ filters.Base }

func newNotFoundEndpoint() *notFoundEndpoint {
	return &notFoundEndpoint{Base: filters.EndpointBase("no_route")}
}

func (*notFoundEndpoint) Apply(c *filters.Context) error {
	c.Respond(http.StatusNotFound, filters.CategoryNoRoute, "no route matches "+c.Method+" "+c.Path)
	return nil
}

var (
	_ filters.Filter    = (*staticEndpoint)(nil)
	_ filters.Describer = (*staticEndpoint)(nil)
	_ filters.Filter    = (*notFoundEndpoint)(nil)
)

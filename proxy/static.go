package proxy

import (
	"net/http"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters"
)

// staticEndpoint answers with a fixed response from config.
type staticEndpoint struct {
	status  int
	body    []byte
	headers []config.Header
}

var _ filters.Filter = (*staticEndpoint)(nil)

func (e *staticEndpoint) Name() string                       { return "static" }
func (e *staticEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (e *staticEndpoint) Order() int                         { return 0 }
func (e *staticEndpoint) ShouldFilter(*filters.Context) bool { return true }

func (e *staticEndpoint) Apply(c *filters.Context) error {
	resp := &c.Request.Response
	resp.SetStatusCode(e.status)
	for _, h := range e.headers {
		resp.Header.Set(h.Name, h.Value)
	}
	resp.SetBodyRaw(e.body)
	c.BytesOut = int64(len(e.body))
	c.MarkResponded(e.status, filters.CategorySuccess)
	return nil
}

// notFoundEndpoint ends the chain of requests no route matched.
type notFoundEndpoint struct{}

func (notFoundEndpoint) Name() string                       { return "no_route" }
func (notFoundEndpoint) Stage() filters.Stage               { return filters.Endpoint }
func (notFoundEndpoint) Order() int                         { return 0 }
func (notFoundEndpoint) ShouldFilter(*filters.Context) bool { return true }
func (notFoundEndpoint) Apply(c *filters.Context) error {
	c.Respond(http.StatusNotFound, filters.CategoryNoRoute, "no route matches "+c.Method+" "+c.Path)
	return nil
}

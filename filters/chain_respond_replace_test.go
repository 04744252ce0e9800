package filters

import (
	"errors"
	"testing"

	"github.com/valyala/fasthttp"
)

type gzipEndpoint struct{}

func (gzipEndpoint) Name() string               { return "gzip" }
func (gzipEndpoint) Stage() Stage               { return Endpoint }
func (gzipEndpoint) Order() int                 { return 0 }
func (gzipEndpoint) ShouldFilter(*Context) bool { return true }
func (gzipEndpoint) Apply(c *Context) error {
	c.Request.Response.Header.Set("Content-Encoding", "gzip")
	c.Request.Response.SetBodyString("\x1f\x8b...")
	c.MarkResponded(200, CategorySuccess)
	return nil
}

type failingOutbound struct{}

func (failingOutbound) Name() string               { return "boom" }
func (failingOutbound) Stage() Stage               { return Outbound }
func (failingOutbound) Order() int                 { return 0 }
func (failingOutbound) ShouldFilter(*Context) bool { return true }
func (failingOutbound) Apply(*Context) error       { return errors.New("boom") }

// An outbound failure replaces the endpoint's answer; the endpoint's
// entity headers must not describe the new plain-text body.
func TestOutboundFailureDropsReplacedResponseHeaders(t *testing.T) {
	ch, err := NewChainBuilder().Build([]Filter{gzipEndpoint{}, failingOutbound{}})
	if err != nil {
		t.Fatal(err)
	}
	var rc fasthttp.RequestCtx
	c := AcquireContext()
	c.Request = &rc
	ch.Run(c)
	if rc.Response.StatusCode() != 500 || c.Category != CategoryFilterError {
		t.Fatalf("status %d category %s", rc.Response.StatusCode(), c.Category)
	}
	if v := rc.Response.Header.Peek("Content-Encoding"); len(v) != 0 {
		t.Fatalf("Content-Encoding %q survived the replacement", v)
	}
	c.Request = nil
	c.Release()
}

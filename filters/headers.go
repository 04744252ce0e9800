package filters

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// RequestHeader returns the first value of the request header name in any
// spelling, or nil. The gateway's server keeps header names exactly as the
// client sent them (it forwards them verbatim), so fasthttp's own Peek is
// case-sensitive there: filters must look headers up through this.
func (c *Context) RequestHeader(name string) []byte {
	if c.Request == nil {
		return nil
	}
	return PeekFold(&c.Request.Request.Header, name)
}

// PeekFold returns the first value of header name in h, in any spelling.
func PeekFold(h *fasthttp.RequestHeader, name string) []byte {
	if v := h.Peek(name); v != nil {
		return v
	}
	for k, v := range h.All() {
		if len(k) == len(name) && bytes.EqualFold(k, []byte(name)) {
			return v
		}
	}
	return nil
}

// OwnsResponseHeader reports whether the gateway sets the response header
// name itself (the status category, and whatever filters asked for with
// SetResponseHeader), so an endpoint copying an origin's headers skips the
// origin's copy in any spelling instead of sending both.
func (c *Context) OwnsResponseHeader(name []byte) bool {
	if c == nil {
		return false
	}
	if len(name) == len(StatusHeader) && bytes.EqualFold(name, []byte(StatusHeader)) {
		return true
	}
	for i := range c.respHeaders {
		if n := c.respHeaders[i].name; len(n) == len(name) && bytes.EqualFold([]byte(n), name) {
			return true
		}
	}
	return false
}

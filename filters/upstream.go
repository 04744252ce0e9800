package filters

import "bytes"

// upstreamHeader is a request header the gateway decides itself: set to
// value on the upstream request, or removed when drop is set. Either way
// the client's own copies, in any spelling, are not forwarded.
type upstreamHeader struct {
	name  string
	value string
	drop  bool
}

// SetUpstreamHeader makes the request reach the origin with exactly one
// name header carrying value, whatever the client sent under that name in
// any spelling (a request id the gateway validated or replaced).
func (c *Context) SetUpstreamHeader(name, value string) {
	c.putUpstream(upstreamHeader{name: name, value: value})
}

// DropUpstreamHeader keeps the client's name header, in any spelling, from
// reaching the origin: gateway-internal headers (the priority and chaos
// headers) from a client not trusted to send them.
func (c *Context) DropUpstreamHeader(name string) {
	c.putUpstream(upstreamHeader{name: name, drop: true})
}

func (c *Context) putUpstream(u upstreamHeader) {
	for i := range c.upstream {
		if len(c.upstream[i].name) == len(u.name) && bytes.EqualFold([]byte(c.upstream[i].name), []byte(u.name)) {
			c.upstream[i] = u
			return
		}
	}
	c.upstream = append(c.upstream, u)
}

// UpstreamOwns reports whether the client's header named name must not be
// copied upstream because the gateway sets or drops it.
func (c *Context) UpstreamOwns(name []byte) bool {
	if c == nil {
		return false
	}
	for i := range c.upstream {
		if len(c.upstream[i].name) == len(name) && bytes.EqualFold([]byte(c.upstream[i].name), name) {
			return true
		}
	}
	return false
}

// UpstreamHeaders calls set for every header the gateway sets on the
// upstream request (dropped ones excluded), in the order first asked for.
func (c *Context) UpstreamHeaders(set func(name, value string)) {
	for _, u := range c.upstream {
		if !u.drop {
			set(u.name, u.value)
		}
	}
}

package filters

import "github.com/floodgate-dev/floodgate/trust"

// RequestView reads a request the way the domain packages' request interfaces ask for it
// (loadshed.Request: scoring rules, chaos experiments). It holds one pointer, so passing it
// as an interface does not allocate.
type RequestView struct{ c *Context }

// View returns the request's view for scoring and experiments.
func (c *Context) View() RequestView { return RequestView{c} }

// Method is the request method.
func (r RequestView) Method() string { return r.c.Method }

// Path is the request path.
func (r RequestView) Path() string { return r.c.Path }

// Route is the matched route's name, "" before routing or without a match.
func (r RequestView) Route() string {
	if r.c.Route == nil {
		return ""
	}
	return r.c.Route.Name
}

// Header is a request header's value, by case-insensitive name.
func (r RequestView) Header(name string) string { return string(r.c.RequestHeader(name)) }

// Query is a query parameter's value.
func (r RequestView) Query(name string) string {
	return string(r.c.Request.QueryArgs().Peek(name))
}

// Identity is who the request comes from, under the gateway's one trust rule.
func (r RequestView) Identity() trust.Identity { return r.c.Identity() }

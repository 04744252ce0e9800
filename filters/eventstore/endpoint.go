package eventstore

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/httpapi"
)

// FilterName is the endpoint's name in chains, logs and the admin API.
const FilterName = "timeseries"

// Categories this endpoint reports besides the shared ones. They are
// distinct from the origin_* categories because the store runs in-process:
// an SRE seeing store_busy tunes queue_buffering, not an origin pool.
var (
	// CategoryStoreBusy is a 503 from the store: async queue full, the
	// store shutting down, or too many request bodies buffered at once.
	// Retry-After says when to try again.
	CategoryStoreBusy = filters.NewCategory("store_busy", filters.GroupLocal)
	// CategoryStoreError is any other 5xx from the store (storage errors).
	CategoryStoreError = filters.NewCategory("store_error", filters.GroupLocal)
)

// Endpoint adapts the store's HTTP edge (timeseries/httpapi, the same one
// cmd/timeseries serves) to the filter chain: it adds the route's
// namespace allowlist and maps answers to status categories.
type Endpoint struct {
	filters.Base
	api     *httpapi.Handler
	allowed allowlist
	admit   httpapi.Admit
}

var _ filters.Filter = (*Endpoint)(nil)

// New returns the "timeseries" endpoint serving svc. opts should have
// passed Validate; a zero MaxBodySize means DefaultMaxBodySize. The caller
// owns svc and closes it after the last chain using the endpoint is
// retired.
func New(svc *timeseries.Service, opts Options) filters.Filter {
	e := &Endpoint{
		Base:    filters.EndpointBase(FilterName),
		api:     httpapi.New(svc, httpapi.Options{MaxBodyBytes: opts.maxBody()}),
		allowed: newAllowlist(opts.Namespaces),
	}
	if e.allowed != nil {
		e.admit = e.checkNamespace
	}
	return e
}

// Apply answers the request. Every outcome, including the store's errors,
// is a JSON response with a category; Apply never returns an error, since
// the chain would replace the store's JSON with a plain-text reason.
func (e *Endpoint) Apply(c *filters.Context) error {
	op := c.Path[strings.LastIndexByte(c.Path, '/')+1:]
	r := e.api.Serve(c.Request, op, e.admit)
	c.BytesIn = r.BytesIn
	c.BytesOut = int64(len(c.Request.Response.Body()))
	cat := categoryFor(r.Status)
	if r.BodyError != nil {
		c.Err = r.BodyError
		if r.Status == http.StatusRequestTimeout {
			cat = filters.CategoryClientTimeout
		}
	}
	if cat != filters.CategorySuccess {
		c.Reason = r.Reason
	}
	c.MarkResponded(r.Status, cat)
	return nil
}

// checkNamespace refuses a namespace this route does not serve.
func (e *Endpoint) checkNamespace(body []byte) *httpapi.Rejection {
	ns, ok := e.allowed.allows(body)
	if ok {
		return nil
	}
	return &httpapi.Rejection{Status: http.StatusForbidden, Body: httpapi.ErrorBody{
		Error:     fmt.Sprintf("namespace %q is not served on this route", ns),
		Field:     "namespace",
		Reason:    "namespace_not_allowed",
		Namespace: ns,
	}}
}

// categoryFor maps the store's status to the request's category.
func categoryFor(status int) filters.Category {
	switch {
	case status < 400:
		return filters.CategorySuccess
	case status == http.StatusRequestEntityTooLarge:
		return filters.CategoryRequestTooLarge
	case status < 500:
		return filters.CategoryClientError
	case status == http.StatusServiceUnavailable:
		return CategoryStoreBusy
	case status == http.StatusGatewayTimeout:
		return filters.CategoryOriginTimeout
	}
	return CategoryStoreError
}

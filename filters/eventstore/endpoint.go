package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/timeseries"
)

// FilterName is the endpoint's name in chains, logs and the admin API.
const FilterName = "timeseries"

// Categories this endpoint reports besides the shared ones. They are
// distinct from the origin_* categories because the store runs in-process:
// an SRE seeing store_busy tunes queue_buffering, not an origin pool.
var (
	// CategoryStoreBusy is a 503 from the store: async queue full, or the
	// store shutting down. Retry-After says when to try again.
	CategoryStoreBusy = filters.NewCategory("store_busy", filters.GroupLocal)
	// CategoryStoreError is any other 5xx from the store (storage errors).
	CategoryStoreError = filters.NewCategory("store_error", filters.GroupLocal)
)

// Endpoint serves the TimeSeries API of an embedded store. One instance
// serves every request of a route; it is safe for concurrent use.
type Endpoint struct {
	filters.Base
	svc     *timeseries.Service
	allowed allowlist
	body    *bodyReader
	ops     []string
}

var _ filters.Filter = (*Endpoint)(nil)

// New returns the "timeseries" endpoint serving svc. opts should have
// passed Validate; a zero MaxBodySize means DefaultMaxBodySize. The caller
// owns svc and closes it after the last chain using the endpoint is
// retired.
func New(svc *timeseries.Service, opts Options) filters.Filter {
	return &Endpoint{
		Base:    filters.EndpointBase(FilterName),
		svc:     svc,
		allowed: newAllowlist(opts.Namespaces),
		body:    newBodyReader(opts.maxBody()),
		ops:     timeseries.Operations(),
	}
}

// Apply answers the request. Every outcome, including the store's errors,
// is a JSON response with a category; Apply never returns an error, since
// the chain would replace the store's JSON with a plain-text reason.
func (e *Endpoint) Apply(c *filters.Context) error {
	if c.Method != http.MethodPost {
		c.Request.Response.Header.Set("Allow", http.MethodPost)
		e.reject(c, http.StatusMethodNotAllowed, filters.CategoryClientError, errorBody{
			Error:  "method " + c.Method + " not allowed; the TimeSeries API takes POST",
			Reason: "method_not_allowed",
		})
		return nil
	}
	op := c.Path[strings.LastIndexByte(c.Path, '/')+1:]
	if !slices.Contains(e.ops, op) {
		e.reject(c, http.StatusNotFound, filters.CategoryClientError, errorBody{
			Error:      fmt.Sprintf("unknown operation %q", op),
			Reason:     "unknown_operation",
			Operations: e.ops,
		})
		return nil
	}
	buf, berr := e.body.read(c)
	if berr != nil {
		// The rest of the body is still on the wire; the connection
		// cannot carry another request.
		c.Request.SetConnectionClose()
		c.Err = berr.err
		reason := "invalid_body"
		if berr.status == http.StatusRequestEntityTooLarge {
			reason = "too_large"
		}
		e.reject(c, berr.status, berr.category, errorBody{Error: berr.msg, Field: "body", Reason: reason})
		return nil
	}
	defer e.body.release(buf)
	c.BytesIn = int64(buf.Len())
	if ns, ok := e.allowed.allows(buf.Bytes()); !ok {
		e.reject(c, http.StatusForbidden, filters.CategoryClientError, errorBody{
			Error:     fmt.Sprintf("namespace %q is not served on this route", ns),
			Field:     "namespace",
			Reason:    "namespace_not_allowed",
			Namespace: ns,
		})
		return nil
	}
	// fasthttp gives no signal when the client goes away, so there is no
	// request context to propagate; the store bounds each call by its SLO.
	r := e.svc.Serve(context.Background(), op, buf.Bytes())
	resp := &c.Request.Response
	resp.SetStatusCode(r.Status)
	resp.Header.SetContentType("application/json")
	if r.RetryAfter > 0 {
		resp.Header.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(r.RetryAfter), 10))
	}
	// Serve returns a fresh slice it does not keep, so it can be handed
	// to fasthttp without a copy.
	resp.SetBodyRaw(r.Body)
	c.BytesOut = int64(len(r.Body))
	cat := categoryFor(r.Status)
	if cat != filters.CategorySuccess {
		c.Reason = storeReason(r.Body)
	}
	c.MarkResponded(r.Status, cat)
	return nil
}

// retryAfterSeconds rounds up: a client told "0" would retry at once.
func retryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
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

// storeReason extracts the store's machine-readable reason for the access
// log; the body is small on errors, so decoding it is cheap.
func storeReason(body []byte) string {
	var b struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return b.Reason
}

// errorBody is the JSON shape of the endpoint's own rejections. Its error,
// field and reason keys match the store's error bodies, so a client parses
// one shape whichever side refused the request.
type errorBody struct {
	Error      string   `json:"error"`
	Field      string   `json:"field,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Namespace  string   `json:"namespace,omitempty"`
	Operations []string `json:"operations,omitempty"`
}

func (e *Endpoint) reject(c *filters.Context, status int, cat filters.Category, b errorBody) {
	body, err := json.Marshal(b)
	if err != nil {
		// Only strings and string slices: cannot fail; keep a valid body.
		body = []byte(`{"error":"internal error"}`)
	}
	resp := &c.Request.Response
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	resp.SetBodyRaw(body)
	c.BytesOut = int64(len(body))
	c.Reason = b.Reason
	c.MarkResponded(status, cat)
}

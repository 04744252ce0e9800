// Package httpapi is the one HTTP edge of the TimeSeries store, shared by the standalone
// server (cmd/timeseries) and the gateway's "timeseries" endpoint (filters/eventstore): it
// reads a request body under a per-request limit and a process-wide budget of buffered
// bytes, runs the operation on a timeseries.Service and writes the JSON answer with its
// status and Retry-After. Everything route-specific (allowlists, status categories, access
// log fields) stays with the caller.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/timeseries"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes     int64 = 16 << 20
	DefaultMaxBufferedBytes int64 = 64 << 20
)

// Options configure a Handler. Zero values pick the defaults.
type Options struct {
	// MaxBodyBytes bounds one request body; larger gets 413 before it is buffered.
	MaxBodyBytes int64
	// MaxBufferedBytes bounds the request bodies buffered at once across all requests of
	// this Handler; a request that would exceed it gets 503 busy with Retry-After, so many
	// concurrent large batches cannot balloon memory.
	MaxBufferedBytes int64
}

// Handler answers TimeSeries API requests. It is safe for concurrent use.
type Handler struct {
	svc    *timeseries.Service
	body   *bodyReader
	ops    []string
	budget *byteBudget
}

// New returns a handler serving svc.
func New(svc *timeseries.Service, o Options) *Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	budget := newByteBudget(max(o.MaxBufferedBytes, o.MaxBodyBytes))
	return &Handler{svc: svc, body: newBodyReader(o.MaxBodyBytes, budget), ops: timeseries.Operations(), budget: budget}
}

// Result tells the caller what was answered, for its logs and metrics.
type Result struct {
	Status  int
	Reason  string // the machine-readable reason of an error answer ("" on success)
	BytesIn int64
	// BodyError is set when the request body could not be read (timeout, truncation,
	// too large); the connection should not carry another request.
	BodyError error
}

// Admit inspects a fully read body before the store runs it; a non-nil Rejection is answered
// instead. The gateway uses it for its per-route namespace allowlist.
type Admit func(body []byte) *Rejection

// Rejection is an answer produced by the caller's Admit.
type Rejection struct {
	Status int
	Body   ErrorBody
}

// ErrorBody is the JSON of an error the edge answers itself. Its error, field and reason
// keys match the store's error bodies, so a client parses one shape.
type ErrorBody struct {
	Error      string   `json:"error"`
	Field      string   `json:"field,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Namespace  string   `json:"namespace,omitempty"`
	Operations []string `json:"operations,omitempty"`
}

// Serve answers the request in rc for operation op (the last path segment). admit may be nil.
func (h *Handler) Serve(rc *fasthttp.RequestCtx, op string, admit Admit) Result {
	if !rc.IsPost() {
		rc.Response.Header.Set("Allow", http.MethodPost)
		return h.reject(rc, http.StatusMethodNotAllowed, ErrorBody{Error: "method " + string(rc.Method()) + " not allowed; the TimeSeries API takes POST", Reason: "method_not_allowed"})
	}
	if !slices.Contains(h.ops, op) {
		return h.reject(rc, http.StatusNotFound, ErrorBody{Error: fmt.Sprintf("unknown operation %q", op), Reason: "unknown_operation", Operations: h.ops})
	}
	buf, berr := h.body.read(ctxBody{rc})
	if berr != nil {
		// The rest of the body may still be on the wire; the connection cannot carry
		// another request.
		rc.SetConnectionClose()
		r := h.reject(rc, berr.status, ErrorBody{Error: berr.msg, Field: "body", Reason: berr.reason})
		r.BodyError = berr.err
		if berr.status == http.StatusServiceUnavailable {
			rc.Response.Header.Set("Retry-After", "1")
		}
		return r
	}
	defer h.body.release(buf)
	in := int64(len(buf.b))
	if admit != nil {
		if rej := admit(buf.b); rej != nil {
			r := h.reject(rc, rej.Status, rej.Body)
			r.BytesIn = in
			return r
		}
	}
	// fasthttp gives no signal when the client goes away, so there is no request context to
	// propagate; the store bounds each call by its SLO.
	resp := h.svc.Serve(context.Background(), op, buf.b)
	rc.Response.SetStatusCode(resp.Status)
	rc.Response.Header.SetContentType("application/json")
	if resp.RetryAfter > 0 {
		rc.Response.Header.Set("Retry-After", strconv.FormatInt(RetryAfterSeconds(resp.RetryAfter), 10))
	}
	// Serve returns a fresh slice it does not keep, so it is handed over without a copy.
	rc.Response.SetBodyRaw(resp.Body)
	r := Result{Status: resp.Status, BytesIn: in}
	if resp.Status >= 400 {
		r.Reason = reasonOf(resp.Body)
	}
	return r
}

// Buffered reports the request-body bytes currently held and the most ever held at once.
func (h *Handler) Buffered() (now, peak int64) { return h.budget.stats() }

// RetryAfterSeconds rounds up: a client told "0" would retry at once.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

func (h *Handler) reject(rc *fasthttp.RequestCtx, status int, b ErrorBody) Result {
	body, err := json.Marshal(b)
	if err != nil {
		body = []byte(`{"error":"internal error"}`) // only strings: cannot fail
	}
	rc.Response.SetStatusCode(status)
	rc.Response.Header.SetContentType("application/json")
	rc.Response.SetBodyRaw(body)
	return Result{Status: status, Reason: b.Reason}
}

// reasonOf extracts the store's machine-readable reason; error bodies are small.
func reasonOf(body []byte) string {
	var b struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	return b.Reason
}

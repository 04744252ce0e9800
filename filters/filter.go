package filters

import (
	"context"
	"time"
)

// Stage is where in a request's life a filter runs.
type Stage uint8

const (
	// Inbound filters run before the endpoint: routing decisions, priority
	// scoring, shedding, rate limiting, auth.
	Inbound Stage = iota
	// Endpoint is the single step that produces the response: proxying to an
	// origin, a static reply, the TimeSeries store.
	Endpoint
	// Outbound filters run on every response, including local rejections.
	Outbound
)

func (s Stage) String() string {
	switch s {
	case Inbound:
		return "inbound"
	case Endpoint:
		return "endpoint"
	case Outbound:
		return "outbound"
	}
	return "unknown"
}

// Filter is one step of the chain. Implementations must be safe for
// concurrent use: one instance serves every request of a config snapshot.
type Filter interface {
	Name() string
	Stage() Stage
	// Order places the filter within its stage; lower runs first and ties
	// break by name so the order never depends on map iteration or config
	// file layout.
	Order() int
	// ShouldFilter is a cheap predicate; Apply runs only when it is true.
	ShouldFilter(c *Context) bool
	// Apply does the work. A non-nil error ends the request with a clear
	// status category (see Error); it is never swallowed.
	Apply(c *Context) error
}

// AsyncFilter is a filter that does I/O (an auth call, a lookup). The chain
// runs it with a deadline and a concurrency cap: when the cap is reached the
// request fails fast with CategoryFilterOverloaded instead of queueing, and a
// call that outlives its deadline fails the request with
// CategoryFilterTimeout.
//
// ApplyAsync runs on the request's goroutine and must honour ctx: every
// standard I/O API does. Running it on its own goroutine would let a filter
// that ignores ctx touch the pooled Context after the request has moved on,
// which is worse than waiting for it.
type AsyncFilter interface {
	Filter
	AsyncLimits() (timeout time.Duration, maxConcurrent int)
	ApplyAsync(ctx context.Context, c *Context) error
}

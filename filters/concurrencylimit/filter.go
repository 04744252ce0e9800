package concurrencylimit

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/floodgate-dev/floodgate/filters"
	ratelimitfilter "github.com/floodgate-dev/floodgate/filters/ratelimit"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// FilterName and FilterOrder place "concurrency_limit" in the inbound
// stage after rate_limit (see filters/order.go), so a request refused for
// its rate does not take a slot.
const (
	FilterName  = "concurrency_limit"
	FilterOrder = filters.OrderConcurrencyLimit
)

// Category is the status category of a request rejected because its key
// has too many requests in flight.
const Category filters.Category = "concurrency_limited"

// retryAfter is the Retry-After of a rejection: slots free up as requests
// complete, typically within a second, not when a lease would expire.
const retryAfter = "1"

func init() {
	filters.Register(FilterName, func() FilterOptions { return FilterOptions{} }, build)
}

// FilterOptions configure one "concurrency_limit" filter instance.
type FilterOptions struct {
	// Policy names a policy from rate_limit.concurrency.
	Policy string `mapstructure:"policy" json:"policy"`
}

// Validate checks the options.
func (o FilterOptions) Validate() error {
	if strings.TrimSpace(o.Policy) == "" {
		return errors.New("policy: must name a concurrency policy (rate_limit.concurrency)")
	}
	return nil
}

type limitFilter struct {
	filters.Base
	lim    *ratelimit.Limiters
	policy string
	// Built once so the request path does not format them.
	goneReason, fallbackNote, allowedNote, rejectedNote string
}

func build(env *filters.Env, o FilterOptions) (filters.Filter, error) {
	lim, err := ratelimitfilter.LimitersFor(env, FilterName, "concurrency", o.Policy,
		func(c ratelimit.Config) []string {
			return ratelimitfilter.PolicyNames(c.Concurrency, func(p ratelimit.ConcurrencyPolicy) string { return p.Name })
		},
		(*ratelimit.Limiters).ConcurrencyNames)
	if err != nil {
		return nil, err
	}
	return &limitFilter{
		Base:         filters.NewBase(FilterName, filters.Inbound, FilterOrder),
		lim:          lim,
		policy:       o.Policy,
		goneReason:   fmt.Sprintf("concurrency_limit: policy %s is no longer configured; request admitted", o.Policy),
		fallbackNote: fmt.Sprintf("concurrency_limit: policy %s counted locally (redis unavailable)", o.Policy),
		allowedNote:  fmt.Sprintf("concurrency_limit: policy %s allowed", o.Policy),
		rejectedNote: fmt.Sprintf("concurrency_limit: policy %s rejected", o.Policy),
	}, nil
}

// Policy returns the policy the instance applies, for the admin API.
func (f *limitFilter) Policy() string { return f.policy }

// Describe is the filter's admin view.
func (f *limitFilter) Describe() any { return map[string]string{"policy": f.policy} }

// Apply takes a slot for the request's key, released when the request
// completes, or answers 429 when the key has Max requests in flight.
func (f *limitFilter) Apply(c *filters.Context) error {
	t := f.lim.Concurrency(f.policy)
	if t == nil {
		c.Log(f.goneReason)
		return nil
	}
	var buf [96]byte
	permit, a := t.Acquire(ratelimitfilter.AppendKey(buf[:0], t.KeySpec(), c))
	if a.Fallback {
		c.Log(f.fallbackNote)
	}
	note := f.rejectedNote
	if a.Allowed {
		note = f.allowedNote
	}
	c.LogValues(note, filters.Value{Name: "in_flight", V: float64(a.InFlight)}, filters.Value{Name: "max", V: float64(a.Max)})
	if !a.Allowed {
		c.Respond(http.StatusTooManyRequests, Category,
			fmt.Sprintf("concurrency limit exceeded (policy %s: %d of %d requests in flight)", f.policy, a.InFlight, a.Max))
		c.SetResponseHeader(ratelimitfilter.HeaderRetryAfter, retryAfter)
		return nil
	}
	// The completion hook runs once the response is complete, whether it
	// succeeded, failed, was cut by the client or a panic was recovered:
	// the handler releases the Context on every path.
	c.OnDone(func(*filters.Context) { permit.Release() })
	return nil
}

var (
	_ filters.Filter    = (*limitFilter)(nil)
	_ filters.Describer = (*limitFilter)(nil)
)

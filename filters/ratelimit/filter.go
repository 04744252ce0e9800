package ratelimit

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// FilterName and FilterOrder place "rate_limit" in the inbound stage:
// after request ids, scoring and global shedding (orders below 200), so a
// request the gateway sheds anyway does not spend a client's tokens.
const (
	FilterName  = "rate_limit"
	FilterOrder = filters.OrderRateLimit
)

// Service keys the gateway provides when it wires a snapshot.
var (
	// LimitersKey is the long-lived *Limiters (required by "rate_limit").
	LimitersKey = filters.NewServiceKey[*ratelimit.Limiters]("ratelimit.limiters")
	// PoliciesKey is the snapshot's rate-limit config. When provided, a
	// filter's policy name is checked against it (the snapshot being
	// built) instead of against the policies currently installed, so a
	// reload that adds a policy and a filter using it validates in one go.
	PoliciesKey = filters.NewServiceKey[ratelimit.Config]("ratelimit.policies")
)

// DecisionKey holds the most restrictive admitted decision of a request, so
// when several rate_limit filters apply (a global and a per-route policy)
// the client is told about the quota that will run out first.
var DecisionKey = filters.NewKey[ratelimit.Decision]("ratelimit.decision")

// Response header names (IETF httpapi RateLimit header fields draft).
const (
	HeaderLimit      = "RateLimit-Limit"
	HeaderRemaining  = "RateLimit-Remaining"
	HeaderReset      = "RateLimit-Reset"
	HeaderRetryAfter = "Retry-After"
)

func init() {
	filters.Register(FilterName, func() FilterOptions { return FilterOptions{} }, build)
}

// FilterOptions configure one "rate_limit" filter instance.
type FilterOptions struct {
	// Policy names a policy from the rate-limit config.
	Policy string `mapstructure:"policy" json:"policy"`
}

// Validate checks the options.
func (o FilterOptions) Validate() error {
	if strings.TrimSpace(o.Policy) == "" {
		return errors.New("policy: must name a rate-limit policy")
	}
	return nil
}

type limitFilter struct {
	filters.Base
	lim    *ratelimit.Limiters
	policy string
	// reasons are built once so a rejection does not allocate them.
	reason, overflowReason, goneReason, fallbackNote string
	// allowedNote and rejectedNote record the decision in the passport.
	allowedNote, rejectedNote string
}

func build(env *filters.Env, o FilterOptions) (filters.Filter, error) {
	lim, err := LimitersFor(env, FilterName, "rate-limit", o.Policy,
		func(c ratelimit.Config) []string {
			return PolicyNames(c.Policies, func(p ratelimit.Policy) string { return p.Name })
		},
		(*ratelimit.Limiters).Names)
	if err != nil {
		return nil, err
	}
	return &limitFilter{
		Base:           filters.NewBase(FilterName, filters.Inbound, FilterOrder),
		lim:            lim,
		policy:         o.Policy,
		reason:         fmt.Sprintf("rate limit exceeded (policy %s)", o.Policy),
		overflowReason: fmt.Sprintf("rate limit exceeded (policy %s, shared overflow bucket: too many tracked keys)", o.Policy),
		goneReason:     fmt.Sprintf("rate_limit: policy %s is no longer configured; request admitted", o.Policy),
		fallbackNote:   fmt.Sprintf("rate_limit: policy %s decided by the local bucket (redis unavailable)", o.Policy),
		allowedNote:    fmt.Sprintf("rate_limit: policy %s allowed", o.Policy),
		rejectedNote:   fmt.Sprintf("rate_limit: policy %s rejected", o.Policy),
	}, nil
}

// Policy returns the policy the instance applies, for the admin API.
func (f *limitFilter) Policy() string { return f.policy }

// Describe is the filter's admin view.
func (f *limitFilter) Describe() any { return map[string]string{"policy": f.policy} }

// Apply spends a token of the request's bucket and answers 429 when there
// is none.
func (f *limitFilter) Apply(c *filters.Context) error {
	b := f.lim.Buckets(f.policy)
	if b == nil {
		// Failing open for the moment between a reload removing a policy
		// and the new chains taking over is the lesser evil; the passport
		// records it.
		c.Log(f.goneReason)
		return nil
	}
	var buf [96]byte
	d := b.Allow(appendKey(buf[:0], b.KeySpec(), c))
	if d.Fallback {
		c.Log(f.fallbackNote)
	}
	note := f.rejectedNote
	if d.Allowed {
		note = f.allowedNote
	}
	c.LogValues(note, filters.Value{Name: "remaining", V: float64(d.Remaining)}, filters.Value{Name: "limit", V: float64(d.Limit)})
	if d.Allowed {
		if prev, ok := DecisionKey.Get(c); !ok || d.Remaining < prev.Remaining {
			DecisionKey.Set(c, d)
			setQuota(c, d)
		}
		return nil
	}
	reason := f.reason
	if d.Overflow {
		reason = f.overflowReason
	}
	c.Respond(http.StatusTooManyRequests, filters.CategoryRateLimited, reason)
	setQuota(c, d)
	c.SetResponseHeaderInt(HeaderRetryAfter, ceilSeconds(max(d.RetryAfter, time.Second)))
	return nil
}

// setQuota asks for the RateLimit-* headers. Limit is the bucket size,
// Remaining the whole tokens left, Reset the seconds until the bucket is
// full again (rounded up, so a client waiting that long finds it full).
// They go through SetResponseHeader because the endpoint replaces the
// response headers with the origin's.
func setQuota(c *filters.Context, d ratelimit.Decision) {
	c.SetResponseHeaderInt(HeaderLimit, int64(d.Limit))
	c.SetResponseHeaderInt(HeaderRemaining, int64(d.Remaining))
	c.SetResponseHeaderInt(HeaderReset, ceilSeconds(d.Reset))
}

// ceilSeconds is d in whole seconds, rounded up (a client told to wait
// must not come back early).
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

var (
	_ filters.Filter    = (*limitFilter)(nil)
	_ filters.Describer = (*limitFilter)(nil)
)

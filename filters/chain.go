package filters

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"time"
)

// Chain is the immutable, sorted list of filters one route runs. It is built
// once per config snapshot; a request keeps the chain it started with even
// if the config reloads while it is in flight.
type Chain struct {
	inbound  []*step
	endpoint *step
	outbound []*step
}

// step wraps one filter with what the chain needs to run it safely.
type step struct {
	f       Filter
	async   AsyncFilter
	timeout time.Duration
	// sem caps concurrent ApplyAsync calls; shared by every chain that holds
	// the same filter instance, because the cap protects the filter's
	// dependency, not one route.
	sem chan struct{}
}

// ChainBuilder builds the chains of one config snapshot, sharing each
// filter instance's concurrency gate across the chains that include it.
type ChainBuilder struct {
	steps map[Filter]*step
}

// NewChainBuilder returns an empty builder.
func NewChainBuilder() *ChainBuilder { return &ChainBuilder{steps: map[Filter]*step{}} }

func (b *ChainBuilder) stepFor(f Filter) *step {
	// A filter implemented on a value type holding a slice or map is legal
	// but can't be a map key (hashing it panics); such a value can't be
	// "the same instance" in two chains anyway, so it gets its own step.
	shared := reflect.ValueOf(f).Comparable()
	if shared {
		if s, ok := b.steps[f]; ok {
			return s
		}
	}
	s := &step{f: f}
	if af, ok := f.(AsyncFilter); ok {
		s.async = af
		timeout, limit := af.AsyncLimits()
		if timeout <= 0 {
			timeout = time.Second
		}
		s.timeout = timeout
		if limit > 0 {
			s.sem = make(chan struct{}, limit)
		}
	}
	if shared {
		b.steps[f] = s
	}
	return s
}

// Build sorts fs into stages. At most one endpoint filter is allowed; a
// chain without one answers 500 unless an inbound filter responds, which is
// how the no-route chain works.
func (b *ChainBuilder) Build(fs []Filter) (*Chain, error) {
	ch := &Chain{}
	for _, f := range fs {
		s := b.stepFor(f)
		switch f.Stage() {
		case Inbound:
			ch.inbound = append(ch.inbound, s)
		case Outbound:
			ch.outbound = append(ch.outbound, s)
		case Endpoint:
			if ch.endpoint != nil {
				return nil, fmt.Errorf("two endpoints in one chain: %q and %q", ch.endpoint.f.Name(), f.Name())
			}
			ch.endpoint = s
		default:
			return nil, fmt.Errorf("filter %q has unknown stage %d", f.Name(), f.Stage())
		}
	}
	byOrder := func(a, b *step) int {
		if c := cmp.Compare(a.f.Order(), b.f.Order()); c != 0 {
			return c
		}
		return cmp.Compare(a.f.Name(), b.f.Name())
	}
	slices.SortStableFunc(ch.inbound, byOrder)
	slices.SortStableFunc(ch.outbound, byOrder)
	return ch, nil
}

// Filters lists the chain's filters in run order, for the admin API.
func (ch *Chain) Filters() []Filter {
	out := make([]Filter, 0, len(ch.inbound)+len(ch.outbound)+1)
	for _, s := range ch.inbound {
		out = append(out, s.f)
	}
	if ch.endpoint != nil {
		out = append(out, ch.endpoint.f)
	}
	for _, s := range ch.outbound {
		out = append(out, s.f)
	}
	return out
}

// Run drives c through the chain: inbound filters until one responds, the
// endpoint unless one did, then every outbound filter.
func (ch *Chain) Run(c *Context) {
	// Steps run back to back, so one clock read per step times them all:
	// each starts when the previous one ended (offsets from c.Start, read
	// on the monotonic clock alone).
	at := time.Since(c.Start)
	for _, s := range ch.inbound {
		if c.responded {
			break
		}
		at = s.run(c, at)
	}
	if !c.responded && ch.endpoint != nil {
		c.EndpointStart = c.Start.Add(at)
		at = ch.endpoint.run(c, at)
	}
	if !c.responded {
		c.Respond(http.StatusInternalServerError, CategoryInternalError, "no endpoint produced a response")
	}
	for _, s := range ch.outbound {
		at = s.run(c, at)
	}
}

// Decisions a chain step records in the passport.
const (
	StepSkipped   = "skipped"   // ShouldFilter was false
	StepContinued = "continued" // ran; the request goes on
	StepResponded = "responded" // ran and produced the response
	StepFailed    = "failed"    // returned an error (or panicked)
)

// run applies the step, which starts at offset at from c.Start, records
// it in the passport and returns the offset it ended at.
func (s *step) run(c *Context, at time.Duration) time.Duration {
	responded := c.responded
	ran, err := s.apply(c)
	if !ran && err == nil {
		// Only the predicate ran, in nanoseconds: the step is recorded at
		// the previous one's end without a clock read of its own (a third
		// of a typical chain's steps are skipped, on every request).
		c.logStep(s.f.Name(), StepSkipped, at, 0)
		return at
	}
	end := time.Since(c.Start)
	if err != nil {
		fe := asError(s.f.Name(), err)
		c.logStep(s.f.Name(), StepFailed+": "+fe.Error(), at, end-at)
		c.Err = fe
		c.Respond(fe.Status, fe.Category, fe.Reason)
		return end
	}
	decision := StepContinued
	if c.responded && !responded {
		decision = StepResponded
	}
	c.logStep(s.f.Name(), decision, at, end-at)
	return end
}

// apply runs the filter if its predicate holds; ran reports whether it did.
func (s *step) apply(c *Context) (ran bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ran = true
			err = Fail(http.StatusInternalServerError, CategoryFilterError,
				"filter "+s.f.Name()+" failed", fmt.Errorf("panic: %v", r))
		}
	}()
	// ShouldFilter is operator code too: a panic in it must fail the
	// request, not the process.
	if !s.f.ShouldFilter(c) {
		return false, nil
	}
	if s.async == nil {
		return true, s.f.Apply(c)
	}
	if s.sem != nil {
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
		default:
			return true, Fail(http.StatusServiceUnavailable, CategoryFilterOverloaded,
				"filter "+s.f.Name()+" is at its concurrency limit", nil)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	err = s.async.ApplyAsync(ctx, c)
	if ctx.Err() == context.DeadlineExceeded {
		return true, Fail(http.StatusGatewayTimeout, CategoryFilterTimeout,
			"filter "+s.f.Name()+" exceeded its "+s.timeout.String()+" deadline", err)
	}
	return true, err
}

// Endpoint returns the chain's endpoint, nil if it has none.
func (ch *Chain) Endpoint() Filter {
	if ch.endpoint == nil {
		return nil
	}
	return ch.endpoint.f
}

package shed

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/loadshed"
)

// Filter names and orders: global shedding right after the request id, so
// an overloaded gateway spends as little as possible on a request it will
// refuse; origin shedding after rate limiting (order 200), just before the
// endpoint.
const (
	GlobalFilterName  = "shed_global"
	GlobalFilterOrder = filters.OrderShedGlobal
	OriginFilterName  = "shed_origin"
	OriginFilterOrder = filters.OrderShedOrigin
	// The release filter runs first among outbound filters: the origin's
	// response headers are in, so its slot in the origin's limiter is free
	// although the body may stream for a long time yet.
	OriginReleaseFilterName  = "shed_origin_release"
	OriginReleaseFilterOrder = filters.OrderShedOriginRelease
)

// ShedderKey is the long-lived *loadshed.Shedder the gateway provides.
var ShedderKey = filters.NewServiceKey[*loadshed.Shedder]("shed.shedder")

// Options configure the shedding built-ins; the thresholds live in the
// loadshed section, so there are none.
type Options struct{}

func init() {
	filters.RegisterBuiltin(GlobalFilterName, filters.EveryChain(), func() Options { return Options{} },
		func(env *filters.Env, _ Options) (filters.Filter, error) {
			sh, err := shedder(env)
			if err != nil {
				return nil, err
			}
			return NewGlobal(sh), nil
		})
	filters.RegisterBuiltin(OriginFilterName, filters.EachRouteWithOrigin(), func() Options { return Options{} },
		func(env *filters.Env, _ Options) (filters.Filter, error) {
			sh, err := shedder(env)
			if err != nil {
				return nil, err
			}
			if env.Route == nil || env.Route.Origin == "" {
				return nil, errors.New("shed_origin is installed on routes with an origin only")
			}
			if env.Route.ActiveOrigin != nil {
				return NewOriginOf(sh, env.Route.Origin, env.Route.ActiveOrigin), nil
			}
			return NewOrigin(sh, env.Route.Origin), nil
		})
	filters.RegisterBuiltin(OriginReleaseFilterName, filters.EachRouteWithOrigin(), func() Options { return Options{} },
		func(*filters.Env, Options) (filters.Filter, error) { return NewOriginRelease(), nil })
}

func shedder(env *filters.Env) (*loadshed.Shedder, error) {
	sh, ok := ShedderKey.Lookup(env.Services)
	if !ok || sh == nil {
		return nil, errors.New("shedding needs the gateway's loadshed.Shedder service (a wiring bug)")
	}
	return sh, nil
}

// HeaderShed names the scope, cutoff and score of a shed request.
const HeaderShed = "X-Floodgate-Shed"

// DecisionKey carries the global decision (including dry-run would-sheds)
// for later filters and logs.
var DecisionKey = filters.NewKey[loadshed.Decision]("shed.decision")

// NewGlobal returns the filter that scores every request and applies chaos
// and the global cutoff. The gateway installs it on every chain.
func NewGlobal(sh *loadshed.Shedder) filters.Filter {
	return &globalFilter{Base: filters.NewBase(GlobalFilterName, filters.Inbound, GlobalFilterOrder), sh: sh}
}

// NewOrigin returns the filter that applies origin's throttler; the
// gateway installs it on each route that proxies to origin, with
// NewOriginRelease.
func NewOrigin(sh *loadshed.Shedder, origin string) filters.Filter {
	return &originFilter{Base: filters.NewBase(OriginFilterName, filters.Inbound, OriginFilterOrder), sh: sh, origin: origin}
}

// NewOriginOf returns the filter that applies, to each request, the
// throttler of the origin active names at that moment: an origin group's
// route sheds by the scope of the member it sends to. group names the
// route's target in the admin view.
func NewOriginOf(sh *loadshed.Shedder, group string, active func() string) filters.Filter {
	return &originFilter{Base: filters.NewBase(OriginFilterName, filters.Inbound, OriginFilterOrder), sh: sh, origin: group, active: active}
}

// NewOriginRelease returns the outbound filter that frees the request's
// slot in the origin scope's limiter once the endpoint has the response
// headers. Without it the slot is freed when the request ends.
func NewOriginRelease() filters.Filter {
	return originReleaseFilter{Base: filters.NewBase(OriginReleaseFilterName, filters.Outbound, OriginReleaseFilterOrder)}
}

// slotKey holds the origin limiter slot a request took.
var slotKey = filters.NewKey[originSlot]("shed.origin.slot")

type originSlot struct {
	o *loadshed.Origin
	d loadshed.Decision
}

func releaseSlot(c *filters.Context) {
	if s, ok := slotKey.Get(c); ok && s.o != nil {
		s.o.Release(s.d)
		slotKey.Set(c, originSlot{})
	}
}

type originReleaseFilter struct{ filters.Base }

func (originReleaseFilter) Apply(c *filters.Context) error {
	releaseSlot(c)
	return nil
}

// globalFilter scores the request and applies chaos and the global cutoff.
type globalFilter struct {
	filters.Base
	sh *loadshed.Shedder
}

func (f *globalFilter) Apply(c *filters.Context) error {
	r := c.View()
	// Priority and chaos headers from a client not trusted to send them
	// are ignored here and never forwarded, so a tier behind this one
	// cannot be steered by them either.
	f.sh.UntrustedHeaders(c.Identity(), c.DropUpstreamHeader)
	score := f.sh.Score(r)
	c.Priority = score
	d := f.sh.DecideGlobal(r, score)
	logDecision(c, &globalNotes, d)
	if d.Shed {
		reject(c, d)
		if d.Scope == loadshed.ScopeGlobal {
			pushBack(c, f.sh.Global())
		}
		return nil
	}
	if d.WouldShed {
		DecisionKey.Set(c, d)
		c.Log("dry-run: would shed (" + d.HeaderValue() + ")")
	}
	g := f.sh.Global()
	g.Begin()
	c.OnDoneWith(endGlobal, g)
	return nil
}

func endGlobal(_ *filters.Context, g any) { g.(*loadshed.Global).End() }

// originFilter applies the route's origin throttler.
type originFilter struct {
	filters.Base
	sh     *loadshed.Shedder
	origin string
	active func() string // nil: origin
}

// Describe is the filter's admin view.
func (f *originFilter) Describe() any {
	if f.active != nil {
		return map[string]string{"origin_group": f.origin, "active_origin": f.active()}
	}
	return map[string]string{"origin": f.origin}
}

func (f *originFilter) Apply(c *filters.Context) error {
	name := f.origin
	if f.active != nil {
		name = f.active()
	}
	o := f.sh.Origin(name)
	score := c.Priority
	if score == filters.Unscored {
		score = f.sh.Score(c.View())
		c.Priority = score
	}
	d := o.Decide(score)
	logDecision(c, &originNotes, d)
	if d.Shed {
		reject(c, d)
		return nil
	}
	if d.WouldShed {
		c.Log("dry-run: would shed (" + d.HeaderValue() + ")")
	}
	d, ok := o.Acquire(d)
	if !ok {
		reject(c, d)
		return nil
	}
	if d.Queued {
		slotKey.Set(c, originSlot{o: o, d: d})
	}
	o.Begin()
	c.OnDoneWith(endOrigin, o)
	return nil
}

func endOrigin(c *filters.Context, o any) {
	releaseSlot(c)
	o.(*loadshed.Origin).Done(originLatency(c), c.Category.OriginFault())
}

// originLatency is the origin's part of the request: the time to response
// headers of the attempt whose answer the client got, never the client's
// download or an event stream's lifetime. 0 (no sample) when no attempt
// was made.
func originLatency(c *filters.Context) time.Duration {
	if n := len(c.Attempts); n > 0 {
		return c.Attempts[n-1].Duration
	}
	return 0
}

// decisionNotes are the passport notes of one shedding filter, built once
// so recording a decision allocates nothing.
type decisionNotes struct{ admitted, shed, chaos, wouldShed string }

var (
	globalNotes = decisionNotes{"shed_global: admitted", "shed_global: shed", "shed_global: shed by chaos", "shed_global: would shed (dry-run)"}
	originNotes = decisionNotes{"shed_origin: admitted", "shed_origin: shed", "shed_origin: shed by chaos", "shed_origin: would shed (dry-run)"}
)

// logDecision records a shedding decision in the passport with the score,
// the scope's cutoff and its overload.
func logDecision(c *filters.Context, n *decisionNotes, d loadshed.Decision) {
	what := n.admitted
	switch {
	case d.Shed && d.Scope == loadshed.ScopeChaos:
		what = n.chaos
	case d.Shed:
		what = n.shed
	case d.WouldShed:
		what = n.wouldShed
	}
	c.LogValues(what, filters.Value{Name: "score", V: float64(d.Score)},
		filters.Value{Name: "cutoff", V: float64(d.CutoffInt())},
		filters.Value{Name: "overload", V: math.Round(d.Overload*1000) / 1000})
}

// reasonPrefix starts the body of a shed request's 503.
const reasonPrefix = "shed under load ("

func reject(c *filters.Context, d loadshed.Decision) {
	cat := filters.CategoryShedGlobal
	switch d.Scope {
	case loadshed.ScopeOrigin:
		cat = filters.CategoryShedOrigin
	case loadshed.ScopeChaos:
		cat = filters.CategoryShedChaos
	}
	// One string holds the reason and, inside it, the header's value: a
	// refusal under overload should cost as little as it can.
	var buf [96]byte
	b := append(buf[:0], reasonPrefix...)
	b = append(d.AppendHeader(b), ')')
	reason := string(b)
	c.Respond(http.StatusServiceUnavailable, cat, reason)
	c.SetResponseHeader(HeaderShed, reason[len(reasonPrefix):len(reason)-1])
	c.SetResponseHeaderInt("Retry-After", int64(d.RetryAfter))
	// The body was not read; closing is cheaper than draining it for a
	// client we are turning away.
	if c.Request.Request.Header.ContentLength() != 0 {
		c.Request.SetConnectionClose()
	}
}

// pushBack applies global.starved_refusals to a refusal of the global scope: while the
// gateway's own work starves its CPU, the answer is held (bounded in time and in number) so
// a client with a bounded number of connections sends fewer requests to refuse, and/or the
// connection is closed after it (loadshed/refusal.go).
func pushBack(c *filters.Context, g *loadshed.Global) {
	delay, hold, closeConn := g.StarvedRefusal()
	if closeConn {
		c.Request.SetConnectionClose()
	}
	if !hold {
		return
	}
	defer g.ReleaseHeld()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.Request.Done(): // the server is shutting down
	}
}

var (
	_ filters.Filter    = (*globalFilter)(nil)
	_ filters.Filter    = (*originFilter)(nil)
	_ filters.Describer = (*originFilter)(nil)
)

package chaos

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/filters/shed"
	"github.com/floodgate-dev/floodgate/loadshed"
)

// Built-in names and orders (filters/order.go).
const (
	GlobalFilterName  = "chaos_global"
	OriginFilterName  = "chaos_origin"
	GlobalFilterOrder = filters.OrderChaosGlobal
	OriginFilterOrder = filters.OrderChaosOrigin
)

// Outcome of a counted request, the metric label "outcome": injected when
// the experiment answered it (shed or fail), else the group of its status
// category (success, client, origin, local).
const OutcomeInjected = "injected"

// Observer receives every request an experiment counts; *metrics.Metrics
// is one.
type Observer interface {
	ObserveChaos(experiment, group, outcome string, d time.Duration)
}

// ObserverKey is the service counted requests are reported to; optional.
var ObserverKey = filters.NewServiceKey[Observer]("chaos.observer")

// Options: experiments are configured in loadshed.chaos.experiments, so
// the filters have none.
type Options struct{}

func init() {
	filters.RegisterBuiltin(GlobalFilterName, filters.EveryChain(), func() Options { return Options{} },
		func(env *filters.Env, _ Options) (filters.Filter, error) {
			f, err := build(env, GlobalFilterName, GlobalFilterOrder, "")
			if err != nil {
				return nil, err
			}
			return f, nil
		})
	filters.RegisterBuiltin(OriginFilterName, filters.EachRouteWithOrigin(), func() Options { return Options{} },
		func(env *filters.Env, _ Options) (filters.Filter, error) {
			if env.Route == nil || env.Route.Origin == "" {
				return nil, errors.New("chaos_origin is installed on routes with an origin only")
			}
			f, err := build(env, OriginFilterName, OriginFilterOrder, env.Route.Origin)
			if err != nil {
				return nil, err
			}
			// An origin group's route: each request is in the experiments
			// of the member it is sent to.
			f.active = env.Route.ActiveOrigin
			return f, nil
		})
}

func build(env *filters.Env, name string, order int, origin string) (*filter, error) {
	sh, ok := shed.ShedderKey.Lookup(env.Services)
	if !ok || sh == nil {
		return nil, errors.New(name + " needs the gateway's loadshed.Shedder service (a wiring bug)")
	}
	obs, _ := ObserverKey.Lookup(env.Services)
	return &filter{Base: filters.NewBase(name, filters.Inbound, order), sh: sh, origin: origin, obs: obs}, nil
}

// claimedKey marks a request an experiment already counts: one experiment
// per request, so a control group is never touched by another experiment
// (global experiments claim first).
var claimedKey = filters.NewKey[bool]("chaos.claimed")

type filter struct {
	filters.Base
	sh     *loadshed.Shedder
	origin string        // "" for the global scope
	active func() string // an origin group's active member; nil: origin
	obs    Observer
}

// scope is the origin whose experiments apply to a request sent now.
func (f *filter) scope() string {
	if f.active != nil {
		return f.active()
	}
	return f.origin
}

// Describe is the filter's admin view.
func (f *filter) Describe() any {
	switch {
	case f.origin == "":
		return map[string]string{"scope": "global"}
	case f.active != nil:
		return map[string]string{"scope": "origin", "origin_group": f.origin, "active_origin": f.active()}
	}
	return map[string]string{"scope": "origin", "origin": f.origin}
}

// ShouldFilter: only while the scope has experiments configured.
func (f *filter) ShouldFilter(c *filters.Context) bool { return f.sh.ChaosExperiments(f.scope()) }

func (f *filter) Apply(c *filters.Context) error {
	if claimed, _ := claimedKey.Get(c); claimed {
		return nil
	}
	if c.Priority == filters.Unscored {
		c.Priority = f.sh.Score(c.View())
	}
	m, ok := f.sh.Experiment(f.scope(), c.View(), c.Priority)
	if !ok {
		return nil
	}
	claimedKey.Set(c, true)
	group := m.Group.String()
	c.Log(m.Note)
	injected := false
	switch m.Action {
	case loadshed.ActionShed:
		injected = true
		header := "chaos; experiment=" + m.Experiment + "; score=" + strconv.Itoa(c.Priority)
		c.Respond(http.StatusServiceUnavailable, filters.CategoryShedChaos, "shed by chaos experiment "+m.Experiment)
		c.SetResponseHeader(shed.HeaderShed, header)
		c.SetResponseHeader("Retry-After", "1")
	case loadshed.ActionFail:
		injected = true
		c.Respond(m.Status, filters.CategoryShedChaos, "failure injected by chaos experiment "+m.Experiment)
	case loadshed.ActionDelay:
		c.Log("chaos: delaying by " + m.Delay.String())
		time.Sleep(m.Delay) // the injected latency: the request's own goroutine waits, as a slow dependency would make it
	}
	if injected && c.Request.Request.Header.ContentLength() != 0 {
		// The body was not read; close rather than drain it.
		c.Request.SetConnectionClose()
	}
	if f.obs != nil {
		obs, name := f.obs, m.Experiment
		c.OnDone(func(c *filters.Context) {
			outcome := c.Category.Group().String()
			if injected {
				outcome = OutcomeInjected
			}
			obs.ObserveChaos(name, group, outcome, c.End.Sub(c.Start))
		})
	}
	return nil
}

var (
	_ filters.Filter    = (*filter)(nil)
	_ filters.Describer = (*filter)(nil)
)

package proxy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/shadow"
)

func init() {
	filters.RegisterEndpoint("origin", func() string { return "" }, newForwardEndpoint)
	filters.RegisterEndpoint("origin_group", func() string { return "" }, newGroupEndpoint)
}

// Services the "origin" endpoint kind uses.
var (
	// OriginsKey is the origin registry requests are sent to (required).
	OriginsKey = filters.NewServiceKey[*origins.Registry]("proxy.origins")
	// ObserverKey receives every attempt, retry and hedge (metrics);
	// optional.
	ObserverKey = filters.NewServiceKey[AttemptObserver]("proxy.observer")
	// configKey is the config a snapshot is being built from, so an
	// endpoint reads its route's settings and the server's.
	configKey = filters.NewServiceKey[*config.Config]("proxy.config")
	// poolsKey is the builder's upstream connection pools.
	poolsKey = filters.NewServiceKey[*clientPool]("proxy.pool")
)

// AttemptObserver watches traffic to origins; *metrics.Metrics is one.
type AttemptObserver interface {
	ObserveOriginAttempt(origin, instance, outcome string, d time.Duration)
	IncRetry(origin string)
	IncHedge(origin string)
}

// newForwardEndpoint builds the endpoint of a route that sets
// "origin: NAME". Origin names are case-insensitive, like the origins
// section's keys.
func newForwardEndpoint(env *filters.Env, origin string) (filters.Filter, error) {
	origin = strings.ToLower(strings.TrimSpace(origin))
	cfg, ok := configKey.Lookup(env.Services)
	if !ok || env.Route == nil {
		return nil, errors.New("the origin endpoint needs the snapshot's config and route (a wiring bug)")
	}
	if origin == "" {
		return nil, errors.New("must name an origin")
	}
	if _, ok := cfg.Origins[origin]; !ok {
		return nil, fmt.Errorf("unknown origin %q (defined: %s)", origin, strings.Join(slices.Sorted(maps.Keys(cfg.Origins)), ", "))
	}
	return buildForwardEndpoint(env, cfg, origin, nil)
}

// newGroupEndpoint builds the endpoint of a route that sets
// "origin_group: NAME": it sends to the group's active origin.
func newGroupEndpoint(env *filters.Env, group string) (filters.Filter, error) {
	group = strings.ToLower(strings.TrimSpace(group))
	cfg, ok := configKey.Lookup(env.Services)
	if !ok || env.Route == nil {
		return nil, errors.New("the origin_group endpoint needs the snapshot's config and route (a wiring bug)")
	}
	if group == "" {
		return nil, errors.New("must name an origin group")
	}
	i := slices.IndexFunc(cfg.OriginGroups, func(g origins.GroupConfig) bool { return g.Name == group })
	if i < 0 {
		names := make([]string, len(cfg.OriginGroups))
		for j, g := range cfg.OriginGroups {
			names[j] = g.Name
		}
		return nil, fmt.Errorf("unknown origin group %q (defined: %s)", group, strings.Join(names, ", "))
	}
	return buildForwardEndpoint(env, cfg, "", &cfg.OriginGroups[i])
}

func buildForwardEndpoint(env *filters.Env, cfg *config.Config, origin string, group *origins.GroupConfig) (_ filters.Filter, err error) {
	reg, ok := OriginsKey.Lookup(env.Services)
	if !ok || reg == nil {
		return nil, errors.New("the gateway has no origin registry (a wiring bug)")
	}
	pool, _ := poolsKey.Lookup(env.Services)
	observer, _ := ObserverKey.Lookup(env.Services)
	r := &cfg.Routes[env.Route.Index]
	tunnels, ok := tunnelsKey.Lookup(env.Services)
	if !ok {
		return nil, errors.New("the origin endpoint needs the builder's tunnel set (a wiring bug)")
	}
	var tm tunnelMetrics = noTunnelMetrics{}
	if to, ok := TunnelObserverKey.Lookup(env.Services); ok && to != nil {
		tm = routeTunnelMetrics{o: to, route: r.Name}
	}
	var sh *shadowing
	if r.Shadow != nil {
		if sh, err = newShadowing(env, r.Name, *r.Shadow, cfg, reg, pool); err != nil {
			return nil, err
		}
	}
	return &forwardEndpoint{
		shadow:     sh,
		Base:       filters.EndpointBase("proxy"),
		route:      r.Name,
		origin:     origin,
		group:      group,
		originCfg:  cfg.Origins[origin],
		reg:        reg,
		pool:       pool,
		timeouts:   r.Timeouts,
		idempotent: r.Idempotent,
		hostOver:   r.Rewrite.Host,
		via:        cfg.Server.Via,
		viaHop:     "1.1 " + cfg.Server.Via,
		maxBody:    int64(cfg.Server.MaxBodySize),
		observer:   observer,

		websocket:     r.WebSocketAllowed(),
		tunnels:       tunnels,
		tunnelLimits:  tunnelLimits{idle: cfg.Server.Tunnel.IdleTimeout, maxLifetime: cfg.Server.Tunnel.MaxLifetime},
		tunnelMetrics: tm,
		logger:        env.Logger,
	}, nil
}

// newShadowing builds a route's shadow from its (validated) config.
func newShadowing(env *filters.Env, route string, sc shadow.Config, cfg *config.Config, reg *origins.Registry, pool *clientPool) (*shadowing, error) {
	sc = sc.WithDefaults()
	if _, ok := cfg.Origins[sc.Origin]; !ok {
		return nil, fmt.Errorf("shadow.origin: unknown origin %q", sc.Origin)
	}
	runner, ok := shadowsKey.Lookup(env.Services)
	if !ok || runner == nil || pool == nil {
		return nil, errors.New("shadowing needs the builder's shadow runner and pools (a wiring bug)")
	}
	observer, _ := ShadowObserverKey.Lookup(env.Services)
	return &shadowing{route: route, mirror: shadow.NewMirror(sc, runner.slotsFor(route), nil), reg: reg, pool: pool,
		runner: runner, observer: observer, mirroredNote: "shadow: mirrored to " + sc.Origin}, nil
}

// OriginName is the origin the endpoint sends to, or its origin group's
// name; built-ins installed on routes with an origin (origin shedding)
// read it.
func (e *forwardEndpoint) OriginName() string {
	if e.group != nil {
		return e.group.Name
	}
	return e.origin
}

// ActiveOrigin is the origin a request sent now goes to: the group's
// active member (its first when the group is not in the registry yet), or
// the route's origin. Origin shedding judges each request by it.
func (e *forwardEndpoint) ActiveOrigin() string {
	if e.group == nil {
		return e.origin
	}
	if g, ok := e.reg.Group(e.group.Name); ok {
		if o := g.Active(); o != nil {
			return o.Name()
		}
	}
	return e.group.Origins[0]
}

// Describe is the endpoint's admin view: the origin (or the group and its
// members) and the route's effective timeouts.
func (e *forwardEndpoint) Describe() any {
	var v map[string]any
	if e.group != nil {
		v = map[string]any{"origin_group": e.group.Name, "origins": e.group.Origins,
			"cross_origin_retries": e.group.CrossOriginRetries, "idempotent": e.idempotent}
	} else {
		t := e.originCfg.Timeouts.Override(e.timeouts)
		v = map[string]any{"origin": e.origin, "timeouts": map[string]string{
			"connect": t.Connect.String(), "response": t.Response.String(),
		}, "idempotent": e.idempotent, "websocket": e.websocket}
	}
	if e.shadow != nil {
		sc := e.shadow.mirror.Config()
		v["shadow"] = map[string]any{"origin": sc.Origin, "fraction": sc.Fraction, "max_concurrency": sc.MaxConcurrency,
			"max_body": sc.MaxBody.String(), "timeout": sc.Timeout.String(), "host": sc.Host, "in_flight": e.shadow.mirror.InFlight()}
	}
	return v
}

var (
	_ filters.OriginEndpoint      = (*forwardEndpoint)(nil)
	_ filters.OriginGroupEndpoint = (*forwardEndpoint)(nil)
	_ filters.Describer           = (*forwardEndpoint)(nil)
)

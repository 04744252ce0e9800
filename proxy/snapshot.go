package proxy

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/routing"
)

// Snapshot is everything one config version needs to serve requests. It is
// immutable once built; the server swaps snapshots atomically and each
// request runs entirely against the one it started with.
type Snapshot struct {
	Config *config.Config
	Table  *routing.Table
	// Chains holds each route's chain at the route's index.
	Chains  []*filters.Chain
	NoRoute *filters.Chain
}

// EndpointFactory builds the endpoint for a route kind the proxy does not
// know itself (the TimeSeries store). It returns nil when the route is not
// of its kind.
type EndpointFactory func(cfg *config.Config, route *config.Route, at string) (filters.Filter, error)

// Builder turns configs into snapshots. It holds what outlives a snapshot:
// the filter registry, shared services and the upstream connection pools.
type Builder struct {
	Registry *filters.Registry
	Services *filters.Services
	Logger   *slog.Logger
	// Always returns filters added to every chain (request id, metrics,
	// access log), built from the config's own sections.
	Always func(cfg *config.Config) ([]filters.Filter, error)
	// PerRoute returns filters added to one route's chain by the gateway
	// itself (the route's origin throttler).
	PerRoute func(cfg *config.Config, r *config.Route) []filters.Filter
	// Endpoints are consulted, in order, for routes that are neither origin
	// nor static.
	Endpoints []EndpointFactory
	// Origins is the origin registry; routes with an origin need it.
	Origins *origins.Registry
	// OnAttempt, OnRetry and OnHedge observe traffic to origins (metrics).
	OnAttempt func(origin string, a filters.Attempt)
	OnRetry   func(origin string)
	OnHedge   func(origin string)

	pool *clientPool
}

// NewBuilder returns a builder using the default registry.
func NewBuilder(logger *slog.Logger) *Builder {
	return &Builder{Registry: filters.Default, Services: &filters.Services{}, Logger: logger, pool: newClientPool()}
}

// Build validates what only the runtime can check (filter names and
// options) and compiles cfg into a snapshot. Errors name key paths.
func (b *Builder) Build(cfg *config.Config) (*Snapshot, error) {
	var problems []string
	fail := func(err error) { problems = append(problems, err.Error()) }

	specs := make([]routing.Spec, len(cfg.Routes))
	for i, r := range cfg.Routes {
		specs[i] = routing.Spec{Name: r.Name, Match: r.Match, Rewrite: r.Rewrite}
	}
	table, err := routing.Compile(specs)
	if err != nil {
		return nil, err
	}
	build := func(path string, spec config.FilterSpec) filters.Filter {
		env := &filters.Env{Path: path, Logger: b.Logger.With("filter", spec.Name, "at", path), Services: b.Services}
		f, err := b.Registry.Build(env, spec.Name, spec.Options)
		if err != nil {
			fail(err)
			return nil
		}
		return f
	}
	var global []filters.Filter
	if b.Always != nil {
		always, err := b.Always(cfg)
		if err != nil {
			fail(err)
		}
		global = append(global, always...)
	}
	for i, spec := range cfg.Filters {
		if f := build(fmt.Sprintf("filters[%d]", i), spec); f != nil {
			global = append(global, f)
		}
	}

	snap := &Snapshot{Config: cfg, Table: table, Chains: make([]*filters.Chain, len(cfg.Routes))}
	chains := filters.NewChainBuilder()
	trusted := make([]netip.Prefix, 0, len(cfg.Server.TrustedProxies))
	for _, t := range cfg.Server.TrustedProxies {
		if p, err := netip.ParsePrefix(t); err == nil {
			trusted = append(trusted, p.Masked())
		}
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		fs := append([]filters.Filter(nil), global...)
		if b.PerRoute != nil {
			fs = append(fs, b.PerRoute(cfg, r)...)
		}
		for j, spec := range r.Filters {
			if f := build(fmt.Sprintf("%s.filters[%d]", at, j), spec); f != nil {
				fs = append(fs, f)
			}
		}
		ep, err := b.endpoint(cfg, r, at, trusted)
		if err != nil {
			fail(err)
			continue
		}
		fs = append(fs, ep)
		ch, err := chains.Build(fs)
		if err != nil {
			fail(fmt.Errorf("%s.filters: %w", at, err))
			continue
		}
		snap.Chains[i] = ch
	}
	noRoute, err := chains.Build(append(append([]filters.Filter(nil), global...), notFoundEndpoint{}))
	if err != nil {
		fail(fmt.Errorf("filters: %w", err))
	}
	snap.NoRoute = noRoute
	if len(problems) > 0 {
		return nil, &config.ValidationError{Problems: problems}
	}
	return snap, nil
}

func (b *Builder) endpoint(cfg *config.Config, r *config.Route, at string, trusted []netip.Prefix) (filters.Filter, error) {
	switch {
	case r.Static != nil:
		return &staticEndpoint{status: r.Static.Status, body: []byte(r.Static.Body), headers: r.Static.Headers}, nil
	case r.Origin != "":
		if _, ok := cfg.Origins[r.Origin]; !ok {
			return nil, fmt.Errorf("%s.origin: unknown origin %q", at, r.Origin)
		}
		if b.Origins == nil {
			return nil, fmt.Errorf("%s.origin: the gateway has no origin registry (a wiring bug)", at)
		}
		return &forwardEndpoint{
			route:      r.Name,
			origin:     r.Origin,
			reg:        b.Origins,
			pool:       b.pool,
			timeouts:   r.Timeouts,
			idempotent: r.Idempotent,
			hostOver:   r.Rewrite.Host,
			via:        cfg.Server.Via,
			trusted:    trusted,
			maxBody:    int64(cfg.Server.MaxBodySize),
			observe:    b.OnAttempt,
			onRetry:    b.OnRetry,
			onHedge:    b.OnHedge,
		}, nil
	}
	for _, f := range b.Endpoints {
		ep, err := f(cfg, r, at)
		if err != nil || ep != nil {
			return ep, err
		}
	}
	return nil, fmt.Errorf("%s: no endpoint configured", at)
}

// DrainRemoved closes the connection pools of instances that left
// discovery, once their in-flight requests are done. Subscribe it to the
// origin registry.
func (b *Builder) DrainRemoved(ch origins.Change) {
	for _, in := range ch.Removed {
		go func() {
			<-in.Drained()
			b.pool.closeAddr(in.Addr())
		}()
	}
}

// Close closes every pooled upstream connection.
func (b *Builder) Close() { b.pool.closeAll() }

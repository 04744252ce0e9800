package proxy

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/routing"
	"github.com/floodgate-dev/floodgate/trust"
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
	// TrustedProxies is server.trusted_proxies, parsed: the peers whose
	// X-Forwarded-For names the client (see trust.Derive).
	TrustedProxies trust.Prefixes
	// HSTS is the Strict-Transport-Security value for responses over TLS
	// ("" for none).
	HSTS string
}

// PathPolicy is server config's path policy (escaped slashes, ";"
// parameters), applied before matching.
func (s *Snapshot) PathPolicy() routing.PathPolicy {
	return routing.PathPolicy{EscapedSlashes: s.Config.Server.EscapedSlashes, Parameters: s.Config.Server.PathParameters}
}

// Builder turns configs into snapshots. It holds what outlives a snapshot:
// the registry (filters and endpoint kinds), the services their factories
// look up (origin registry, shedder, metrics, ...), and the upstream
// connection pools.
//
// A chain is: the built-in filters whose install rule picks the route
// (enabled by their config section), the config's global filters, the
// route's own filters, and the endpoint of the route's kind; sorted by
// stage and order (filters/order.go).
type Builder struct {
	Registry *filters.Registry
	Services *filters.Services
	Logger   *slog.Logger

	pool    *clientPool
	tunnels *tunnelSet
	shadows *shadowRunner
}

// NewBuilder returns a builder using the default registry.
func NewBuilder(logger *slog.Logger) *Builder {
	b := &Builder{Registry: filters.Default, Services: &filters.Services{}, Logger: logger, pool: newClientPool(), tunnels: newTunnelSet(),
		shadows: newShadowRunner()}
	poolsKey.Provide(b.Services, b.pool)
	tunnelsKey.Provide(b.Services, b.tunnels)
	shadowsKey.Provide(b.Services, b.shadows)
	return b
}

// Build validates what only the runtime can check (filter and endpoint
// kinds and their options) and compiles cfg into a snapshot. It changes
// nothing outside the snapshot. Errors name key paths.
func (b *Builder) Build(cfg *config.Config) (*Snapshot, error) {
	var errs decode.Errors
	specs := make([]routing.Spec, len(cfg.Routes))
	for i, r := range cfg.Routes {
		specs[i] = routing.Spec{Name: r.Name, Match: r.Match, Rewrite: r.Rewrite}
	}
	// A table that does not compile is reported with the chains' problems,
	// so a config checker lists everything at once.
	table, err := routing.Compile(specs)
	errs.Merge("", err)
	services := b.Services.Clone()
	configKey.Provide(services, cfg)
	env := func(path string, route *filters.Route) *filters.Env {
		return &filters.Env{Path: path, Route: route, Logger: b.Logger.With("at", path), Services: services}
	}
	build := func(path, name string, route *filters.Route, options any) filters.Filter {
		f, err := b.Registry.Build(env(path, route), name, options)
		errs.Merge("", err)
		return f
	}

	builtins := b.enabledBuiltins(cfg, &errs)
	shared := map[string]filters.Filter{}
	for _, bi := range builtins {
		if !bi.Install.PerRoute {
			if f := build(bi.Name, bi.Name, nil, cfg.Builtin(bi.Name).Options); f != nil {
				shared[bi.Name] = f
			}
		}
	}
	var global []filters.Filter
	for i, spec := range cfg.Filters {
		if f := build(fmt.Sprintf("filters[%d]", i), spec.Name, nil, spec.Options); f != nil {
			global = append(global, f)
		}
	}
	// installed returns the built-ins and global filters of one chain.
	installed := func(route *filters.Route) []filters.Filter {
		fs := append([]filters.Filter(nil), global...)
		for _, bi := range builtins {
			switch {
			case !bi.Install.Where(route):
			case bi.Install.PerRoute:
				if f := build(bi.Name, bi.Name, route, cfg.Builtin(bi.Name).Options); f != nil {
					fs = append(fs, f)
				}
			case shared[bi.Name] != nil:
				fs = append(fs, shared[bi.Name])
			}
		}
		return fs
	}

	snap := &Snapshot{Config: cfg, Table: table, Chains: make([]*filters.Chain, len(cfg.Routes))}
	chains := filters.NewChainBuilder()
	trusted, err := trust.Parse(cfg.Server.TrustedProxies)
	if err != nil {
		errs.Add("server.trusted_proxies", "%v", err)
	}
	snap.TrustedProxies = trusted
	snap.HSTS = cfg.Server.TLS.HSTS.HeaderValue()
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		kind, options, ok := r.EndpointKind()
		if !ok {
			errs.Add(at, "an endpoint is required: set one endpoint kind (%s)", strings.Join(b.Registry.EndpointKinds(), ", "))
			continue
		}
		info := &filters.Route{Name: r.Name, Index: i, Endpoint: kind}
		ep, err := b.Registry.BuildEndpoint(env(at+"."+kind, info), kind, options)
		if err != nil {
			errs.Merge("", err)
			continue
		}
		if oe, ok := ep.(filters.OriginEndpoint); ok {
			info.Origin = oe.OriginName()
		}
		if ge, ok := ep.(filters.OriginGroupEndpoint); ok && ge.OriginName() != ge.ActiveOrigin() {
			info.ActiveOrigin = ge.ActiveOrigin
		}
		fs := installed(info)
		for j, spec := range r.Filters {
			if f := build(fmt.Sprintf("%s.filters[%d]", at, j), spec.Name, info, spec.Options); f != nil {
				fs = append(fs, f)
			}
		}
		ch, err := chains.Build(append(fs, ep))
		if err != nil {
			errs.Add(at+".filters", "%v", err)
			continue
		}
		snap.Chains[i] = ch
	}
	noRoute, err := chains.Build(append(installed(nil), newNotFoundEndpoint()))
	if err != nil {
		errs.Add("filters", "%v", err)
	}
	snap.NoRoute = noRoute
	errs.Dedupe()
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return snap, nil
}

// enabledBuiltins returns the registered built-ins cfg leaves on, and
// reports config sections that name no built-in.
func (b *Builder) enabledBuiltins(cfg *config.Config, errs *decode.Errors) []filters.Builtin {
	all := b.Registry.Builtins()
	var on []filters.Builtin
	for _, bi := range all {
		if cfg.Builtin(bi.Name).On() {
			on = append(on, bi)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Builtins)) {
		if !slices.ContainsFunc(all, func(bi filters.Builtin) bool { return bi.Name == name }) {
			names := make([]string, len(all))
			for i, bi := range all {
				names[i] = bi.Name
			}
			errs.Add(name, "unknown config section or built-in filter (built-in filters: %s)", strings.Join(names, ", "))
		}
	}
	return on
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

// Close closes open tunnels, waits for shadow copies still running (each
// ends within its timeout), then closes every pooled upstream connection.
func (b *Builder) Close() {
	b.tunnels.closeAll("the gateway stopped")
	b.shadows.wait()
	b.pool.closeAll()
}

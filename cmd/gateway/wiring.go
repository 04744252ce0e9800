package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/filters/accesslog"
	"github.com/floodgate-dev/floodgate/filters/chaos"
	"github.com/floodgate-dev/floodgate/filters/eventstore"
	"github.com/floodgate-dev/floodgate/filters/metrics"
	"github.com/floodgate-dev/floodgate/filters/passport"
	ratelimitfilter "github.com/floodgate-dev/floodgate/filters/ratelimit"
	"github.com/floodgate-dev/floodgate/filters/shed"
	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/proxy"
	"github.com/floodgate-dev/floodgate/ratelimit"
	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// runtime holds what outlives config snapshots: metrics, rate-limit
// buckets (which keep their tokens across reloads), log outputs, and the
// snapshot builder with its connection pools.
type runtime struct {
	logger   *slog.Logger
	metrics  *metrics.Metrics
	limiters *ratelimit.Limiters
	outputs  *accesslog.Outputs
	// passports holds the passports trusted callers asked for.
	passports *passport.Ring
	origins   *origins.Registry
	shedder   *loadshed.Shedder
	store     *timeseries.Service
	storeDir  string
	builder   *proxy.Builder
	// validateOnly builds snapshots without opening the store, so
	// `validate` has no side effects on disk.
	validateOnly bool
	// extraChanges are applied after the built-in ones; tests use them to
	// make a reload fail late.
	extraChanges []change
	// tls holds the client listener's certificates when server.tls is on
	// (see startTLS).
	tls *tlsconf.Store
}

// newRuntime creates the long-lived parts for the first config. Origins
// start here: discovery and health checks run from now on, except when
// only validating, which must touch nothing outside the process.
func newRuntime(logger *slog.Logger, cfg *config.Config, validateOnly bool) (*runtime, error) {
	rt := &runtime{logger: logger, metrics: metrics.New(), outputs: accesslog.NewOutputs(nil, nil), validateOnly: validateOnly,
		passports: passport.NewRing()}
	ratelimit.RouteClientLogs(logger)
	rt.limiters = ratelimit.New(ratelimit.Options{OnReject: rt.metrics.IncRateLimited, Logger: logger.With("component", "ratelimit")})
	rt.metrics.Registry().MustRegister(ratelimitfilter.NewCollector(rt.limiters))
	rt.builder = proxy.NewBuilder(logger)
	startOrigins := cfg.Origins
	if validateOnly {
		startOrigins = nil // config.Validate already checked them
	}
	reg, err := origins.NewRegistry(startOrigins, origins.Options{
		Logger: logger.With("component", "origins"),
		Hooks:  origins.Hooks{OnDiscoveryEmptyKept: rt.metrics.RegisterDiscoveryEmptyKept()},
	})
	if err != nil {
		rt.close()
		return nil, err
	}
	rt.origins = reg
	shedCfg := cfg.LoadShed
	if validateOnly {
		shedCfg = loadshed.Default() // only a service for factories; config.Validate checked the section
	}
	if rt.shedder, err = loadshed.New(shedCfg, loadshed.WithExperimentEvents(rt.experimentEvent)); err != nil {
		rt.close()
		return nil, err
	}
	rt.shedder.SetConcurrencySource(originConcurrency(reg))
	reg.SetCutoffSource(originCutoff(rt.shedder))
	rt.metrics.RegisterTrafficSources(metrics.TrafficSources{Groups: rt.groupMetrics, Outliers: rt.outlierMetrics})
	rt.metrics.SetShedSource(rt.shedScopes)
	rt.metrics.SetInstanceSource(rt.instanceStates)
	reg.Subscribe(rt.builder.DrainRemoved)
	// The long-lived services the registered kinds' factories look up.
	svc := rt.builder.Services
	proxy.OriginsKey.Provide(svc, reg)
	proxy.ObserverKey.Provide(svc, rt.metrics)
	proxy.TunnelObserverKey.Provide(svc, rt.metrics)
	proxy.ShadowObserverKey.Provide(svc, rt.metrics)
	chaos.ObserverKey.Provide(svc, rt.metrics)
	shed.ShedderKey.Provide(svc, rt.shedder)
	ratelimitfilter.LimitersKey.Provide(svc, rt.limiters)
	metrics.ServiceKey.Provide(svc, rt.metrics)
	accesslog.OutputsKey.Provide(svc, rt.outputs)
	passport.RingKey.Provide(svc, rt.passports)
	return rt, nil
}

// experimentEvent logs a chaos experiment starting, ending by itself or
// being stopped by a reload.
func (rt *runtime) experimentEvent(e loadshed.ExperimentEvent) {
	if rt.validateOnly {
		return
	}
	rt.logger.Info("chaos experiment "+e.What, "experiment", e.Name, "at", e.At)
}

// openStore opens the embedded TimeSeries store once namespaces are
// configured. It stays open across reloads; a new data_dir needs a
// restart.
func (rt *runtime) openStore(cfg *config.Config) error {
	if rt.validateOnly || rt.store != nil || len(cfg.TimeSeries.Store.Namespaces) == 0 {
		return nil
	}
	svc, err := timeseries.Open(cfg.TimeSeries.DataDir, cfg.TimeSeries.Store,
		timeseries.WithLogf(func(format string, args ...any) {
			rt.logger.Info(fmt.Sprintf(format, args...), "component", "timeseries")
		}))
	if err != nil {
		return fmt.Errorf("timeseries.data_dir: opening the store: %w", err)
	}
	rt.store, rt.storeDir = svc, cfg.TimeSeries.DataDir
	rt.metrics.Registry().MustRegister(svc.Collector()) // async queue depth, bytes, losses
	rt.logger.Info("timeseries store open", "data_dir", cfg.TimeSeries.DataDir, "namespaces", svc.Namespaces())
	return nil
}

// attach connects the runtime to the running server's own signals.
func (rt *runtime) attach(srv *proxy.Server) {
	rt.metrics.SetInFlightSource(srv.InFlight)
	rt.metrics.SetOpenConnectionsSource(srv.OpenConnections)
	rt.metrics.RegisterAcceptErrors(srv.AcceptErrors)
	rt.shedder.Global().SetConnectionsGauge(srv.OpenConnections)
	rt.metrics.SetRefusedConnectionsSource(srv.RefusedConnections)
}

// originConcurrency feeds each origin's shedding scope with the origin's
// concurrency against its adaptive limit and hard caps.
func originConcurrency(reg *origins.Registry) loadshed.ConcurrencySource {
	return func(name string) (loadshed.OriginConcurrency, bool) {
		o, ok := reg.Get(name)
		if !ok {
			return loadshed.OriginConcurrency{}, false
		}
		c := o.Concurrency()
		return loadshed.OriginConcurrency{Awaiting: c.Awaiting, Limit: c.Limit, InFlight: c.InFlight, Cap: c.Cap,
			NoLoadRTT: c.NoLoadRTT, Learned: c.Learned, Proven: float64(c.Proven), Refuses: c.Refuses}, true
	}
}

// originCutoff tells origin groups each origin's shedding cutoff (100, no
// shedding, while the origin's scope is in dry run).
func originCutoff(sh *loadshed.Shedder) origins.CutoffSource {
	return func(name string) (float64, bool) {
		cfg := sh.Config()
		if oc := cfg.OriginConfigFor(name); oc.DryRun {
			return 100, true
		}
		return sh.Origin(name).Decide(0).Cutoff, true
	}
}

// groupMetrics reports the origin groups for the metrics scrape.
func (rt *runtime) groupMetrics() ([]metrics.GroupMember, []metrics.Failovers) {
	var members []metrics.GroupMember
	var failovers []metrics.Failovers
	for _, name := range rt.origins.GroupNames() {
		g, ok := rt.origins.Group(name)
		if !ok {
			continue
		}
		for _, m := range g.Status().Members {
			members = append(members, metrics.GroupMember{Group: name, Origin: m.Origin, Active: m.Active})
		}
		for k, n := range g.Failovers() {
			failovers = append(failovers, metrics.Failovers{Group: name, From: k.From, To: k.To, Reason: k.Reason, Count: n})
		}
	}
	return members, failovers
}

// outlierMetrics reports the outlier detection of every origin that has it on.
func (rt *runtime) outlierMetrics() []metrics.OutlierState {
	var out []metrics.OutlierState
	for _, name := range rt.origins.Names() {
		o, ok := rt.origins.Get(name)
		if !ok || !o.Config().OutlierDetection.Enabled {
			continue
		}
		c := o.OutlierCounts()
		out = append(out, metrics.OutlierState{Origin: name, Ejected: c.Ejected, Ejections: c.Ejections})
	}
	return out
}

// groupsView is the /admin/origin_groups document: each group's active
// origin, why, and every member's verdict.
func (rt *runtime) groupsView() any {
	out := []origins.GroupStatus{}
	for _, name := range rt.origins.GroupNames() {
		if g, ok := rt.origins.Group(name); ok {
			out = append(out, g.Status())
		}
	}
	return out
}

// shedScopes reports every shedding scope for the metrics scrape.
func (rt *runtime) shedScopes() []metrics.ShedScope {
	snap := rt.shedder.Snapshot()
	bands := func(b loadshed.BandCounts) []metrics.BandCount {
		out := make([]metrics.BandCount, 0, len(b))
		for i, n := range b {
			out = append(out, metrics.BandCount{Band: loadshed.BandLabel(i), Count: n})
		}
		return out
	}
	scope := func(s loadshed.ScopeSnapshot) metrics.ShedScope {
		return metrics.ShedScope{Scope: s.Name, Overload: s.Overload, Cutoff: s.Cutoff, Shed: bands(s.Shed), WouldShed: bands(s.WouldShed)}
	}
	out := []metrics.ShedScope{scope(snap.Global), {Scope: "chaos", Cutoff: 100, Shed: bands(snap.Chaos)}}
	for _, o := range snap.Origins {
		out = append(out, scope(o))
	}
	return out
}

// originsView is the /admin/origins document.
func (rt *runtime) originsView() any {
	type ejection struct {
		Ejected    bool   `json:"ejected"`
		Remaining  string `json:"remaining,omitempty"`
		Reason     string `json:"reason,omitempty"`
		Multiplier int    `json:"multiplier"`
	}
	type instance struct {
		Address  string    `json:"address"`
		Weight   int       `json:"weight"`
		InFlight int64     `json:"in_flight"`
		Breaker  string    `json:"breaker"`
		Healthy  bool      `json:"healthy"`
		Requests uint64    `json:"requests"`
		Failures uint64    `json:"failures"`
		Outlier  *ejection `json:"outlier,omitempty"` // with outlier detection on
	}
	type outliers struct {
		Ejected   int               `json:"ejected"`
		Ejections map[string]uint64 `json:"ejections"`
		// Skipped counts ejections max_ejection_percent refused.
		Skipped uint64 `json:"skipped"`
	}
	type origin struct {
		InFlight     int64      `json:"in_flight"`
		Instances    []instance `json:"instances"`
		RetryAllowed uint64     `json:"retries_allowed"`
		RetryDenied  uint64     `json:"retries_denied"`
		Outliers     *outliers  `json:"outlier_detection,omitempty"`
	}
	out := map[string]origin{}
	for _, name := range rt.origins.Names() {
		o, ok := rt.origins.Get(name)
		if !ok {
			continue
		}
		v := origin{InFlight: o.InFlight(), RetryAllowed: o.Budget().Allowed(), RetryDenied: o.Budget().Denied()}
		detecting := o.Config().OutlierDetection.Enabled
		if detecting {
			c := o.OutlierCounts()
			v.Outliers = &outliers{Ejected: c.Ejected, Ejections: c.Ejections, Skipped: c.Skipped}
		}
		for _, in := range o.Instances() {
			iv := instance{Address: in.Addr(), Weight: in.Weight(), InFlight: in.InFlight(),
				Breaker: in.BreakerState().String(), Healthy: in.Healthy(), Requests: in.Requests(), Failures: in.Failures()}
			if detecting {
				e := o.Ejection(in)
				iv.Outlier = &ejection{Ejected: e.Ejected, Reason: e.Reason, Multiplier: e.Multiplier}
				if e.Ejected {
					iv.Outlier.Remaining = e.Remaining.Round(time.Millisecond).String()
				}
			}
			v.Instances = append(v.Instances, iv)
		}
		out[name] = v
	}
	return out
}

// readiness: config is loaded (the server exists) and every origin has an
// instance it could send to, except a member of an origin group whose
// active origin has some (the group fails over to serve without it).
func (rt *runtime) readiness() error {
	covered := map[string]bool{}
	for _, name := range rt.origins.GroupNames() {
		if g, ok := rt.origins.Group(name); ok {
			if a := g.Active(); a != nil && len(a.Instances()) > 0 {
				for _, m := range g.Status().Members {
					covered[m.Origin] = true
				}
			}
		}
	}
	for _, name := range rt.origins.Names() {
		o, ok := rt.origins.Get(name)
		if (!ok || len(o.Instances()) == 0) && !covered[name] {
			return fmt.Errorf("origin %s has no instances", name)
		}
	}
	return nil
}

// instanceStates reports every origin instance for the metrics scrape.
func (rt *runtime) instanceStates() []metrics.InstanceState {
	var out []metrics.InstanceState
	for _, name := range rt.origins.Names() {
		o, ok := rt.origins.Get(name)
		if !ok {
			continue
		}
		for _, in := range o.Instances() {
			out = append(out, metrics.InstanceState{Origin: name, Instance: in.Addr(), InFlight: in.InFlight(), BreakerState: int(in.BreakerState())})
		}
	}
	return out
}

// build compiles cfg into a snapshot without touching the running state
// (except opening the TimeSeries store the first time a config needs it).
func (rt *runtime) build(cfg *config.Config) (*proxy.Snapshot, error) {
	if err := rt.openStore(cfg); err != nil {
		return nil, err
	}
	svc := rt.builder.Services
	ratelimitfilter.PoliciesKey.Provide(svc, cfg.RateLimit)
	eventstore.StoreConfigKey.Provide(svc, cfg.TimeSeries.Store)
	eventstore.StoreKey.Provide(svc, rt.store)
	return rt.builder.Build(cfg)
}

// change is one part of a reload that lives outside the snapshot. check
// reports, without changing anything, why apply would fail; once every
// check has passed, apply does not fail (see changes for the one
// exception).
type change struct {
	key   string
	check func() error
	apply func() error
}

// changes lists what cfg changes outside the snapshot, in the order it is
// applied.
func (rt *runtime) changes(cfg *config.Config) []change {
	var cs []change
	if rt.store != nil && len(cfg.TimeSeries.Store.Namespaces) > 0 {
		// First: the store's reconfiguration can fail on the data it holds,
		// which no check sees; failing first, it leaves everything as it
		// was.
		cs = append(cs, change{key: "timeseries", apply: func() error {
			if cfg.TimeSeries.DataDir != rt.storeDir {
				rt.logger.Warn("config key changed but needs a restart to take effect", "key", "timeseries.data_dir")
			}
			return rt.store.Reconfigure(cfg.TimeSeries.Store)
		}})
	}
	if rt.tls != nil && cfg.Server.TLS.Enabled() {
		// The certificates named by the new config, loaded in check;
		// installing them cannot fail.
		var commit func() error
		cs = append(cs, change{key: "server.tls",
			check: func() (err error) { commit, err = rt.tls.Prepare(cfg.Server.TLS); return err },
			apply: func() error {
				if err := commit(); err != nil {
					rt.logger.Warn("TLS certificates installed but their files are not watched; reload with SIGHUP", "error", err)
				}
				return nil
			}})
	}
	originNames := make([]string, 0, len(cfg.Origins))
	for n := range cfg.Origins {
		originNames = append(originNames, n)
	}
	cs = append(cs,
		change{key: "origins",
			check: func() error { return origins.ValidateOrigins(cfg.Origins) },
			apply: func() error { return rt.origins.Update(cfg.Origins) }},
		change{key: "origin_groups",
			check: func() error { return origins.ValidateGroups(cfg.OriginGroups, cfg.Origins) },
			apply: func() error { return rt.origins.SetGroups(cfg.OriginGroups) }},
		change{key: "loadshed",
			check: func() error {
				if err := cfg.LoadShed.Validate(); err != nil {
					return err
				}
				_, err := loadshed.NewScorer(cfg.LoadShed.Scoring)
				return err
			},
			apply: func() error {
				if err := rt.shedder.Update(cfg.LoadShed); err != nil {
					return err
				}
				rt.shedder.RetainOrigins(originNames)
				return nil
			}},
		change{key: "rate_limit",
			check: func() error { return cfg.RateLimit.Validate() },
			apply: func() error { return rt.limiters.Configure(cfg.RateLimit) }},
	)
	return append(cs, rt.extraChanges...)
}

// activate makes cfg and its snapshot current, all or nothing: every
// change is checked before any is applied, and swap (which installs the
// snapshot) runs last. A config that fails changes nothing.
func (rt *runtime) activate(cfg *config.Config, swap func()) error {
	cs := rt.changes(cfg)
	for _, c := range cs {
		if c.check == nil {
			continue
		}
		if err := c.check(); err != nil {
			return decode.Prefix(c.key, err)
		}
	}
	for i, c := range cs {
		if err := c.apply(); err != nil {
			if i > 0 {
				// A checked change failed: only a closing runtime does this.
				rt.logger.Error("reload applied in part; a checked change failed", "key", c.key, "error", err)
			}
			return decode.Prefix(c.key, err)
		}
	}
	swap()
	return nil
}

// startTLS loads the client listener's certificates, watches their files
// and exports the TLS metrics; srv reports its failed handshakes.
func (rt *runtime) startTLS(cfg tlsconf.ServerConfig, srv *proxy.Server) error {
	store, err := tlsconf.NewStore(cfg, rt.logger.With("component", "tls"))
	if err != nil {
		return decode.Prefix("server.tls", err)
	}
	if err := store.Watch(); err != nil {
		rt.logger.Warn("TLS certificate files are not watched; reload with SIGHUP", "error", err)
	}
	rt.tls = store
	rt.metrics.RegisterTLS(func() metrics.TLSState {
		st := metrics.TLSState{HandshakeErrors: srv.TLSHandshakeErrors(), CertReloadErrors: store.ReloadErrors()}
		for _, c := range store.Certificates() {
			st.Certificates = append(st.Certificates, metrics.TLSCertificate{Name: c.Name, NotAfter: c.NotAfter})
		}
		return st
	})
	return nil
}

func (rt *runtime) close() {
	if rt.tls != nil {
		rt.tls.Close()
	}
	if rt.origins != nil {
		rt.origins.Close()
	}
	if rt.shedder != nil {
		rt.shedder.Close()
	}
	if rt.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := rt.store.Close(ctx); err != nil {
			rt.logger.Error("closing the timeseries store", "error", err)
		}
		cancel()
	}
	rt.builder.Close()
	rt.limiters.Close()
	if err := rt.outputs.Close(); err != nil {
		rt.logger.Warn("closing access log outputs", "error", fmt.Sprint(err))
	}
}

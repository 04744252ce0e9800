package main

import (
	"fmt"
	"log/slog"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/filters/accesslog"
	"github.com/floodgate-dev/floodgate/filters/metrics"
	"github.com/floodgate-dev/floodgate/filters/ratelimit"
	"github.com/floodgate-dev/floodgate/filters/ratelimit/limits"
	"github.com/floodgate-dev/floodgate/filters/requestid"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/proxy"
)

// runtime holds what outlives config snapshots: metrics, rate-limit
// buckets (which keep their tokens across reloads), log outputs, and the
// snapshot builder with its connection pools.
type runtime struct {
	logger   *slog.Logger
	metrics  *metrics.Metrics
	limiters *limits.Limiters
	outputs  *accesslog.Outputs
	origins  *origins.Registry
	builder  *proxy.Builder
}

// newRuntime creates the long-lived parts for the first config. Origins
// start here: discovery and health checks run from now on.
func newRuntime(logger *slog.Logger, cfg *config.Config) (*runtime, error) {
	rt := &runtime{logger: logger, metrics: metrics.New(), outputs: accesslog.NewOutputs(nil, nil)}
	rt.limiters = limits.New(limits.Options{OnReject: rt.metrics.IncRateLimited})
	rt.builder = proxy.NewBuilder(logger)
	reg, err := origins.NewRegistry(cfg.Origins, origins.Options{Logger: logger.With("component", "origins")})
	if err != nil {
		rt.close()
		return nil, err
	}
	rt.origins = reg
	rt.builder.Origins = reg
	reg.Subscribe(rt.builder.DrainRemoved)
	rt.builder.OnRetry = rt.metrics.IncRetry
	rt.builder.OnHedge = rt.metrics.IncHedge
	rt.metrics.SetInstanceSource(rt.instanceStates)
	rt.builder.Always = rt.alwaysFilters
	rt.builder.OnAttempt = func(origin string, a filters.Attempt) {
		rt.metrics.ObserveOriginAttempt(origin, a.Instance, a.Outcome, a.Duration)
	}
	ratelimit.LimitersKey.Provide(rt.builder.Services, rt.limiters)
	metrics.ServiceKey.Provide(rt.builder.Services, rt.metrics)
	accesslog.OutputsKey.Provide(rt.builder.Services, rt.outputs)
	return rt, nil
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

// build compiles cfg into a snapshot without touching the running state.
func (rt *runtime) build(cfg *config.Config) (*proxy.Snapshot, error) {
	ratelimit.PoliciesKey.Provide(rt.builder.Services, cfg.RateLimit)
	return rt.builder.Build(cfg)
}

// activate applies the parts of cfg that live outside the snapshot; call
// it right before the snapshot is swapped in.
func (rt *runtime) activate(cfg *config.Config) error {
	if err := rt.origins.Update(cfg.Origins); err != nil {
		return err
	}
	return rt.limiters.Update(cfg.RateLimit.Policies)
}

// alwaysFilters are installed on every chain: request ids first, metrics
// and the access log last, so every response is counted and logged.
func (rt *runtime) alwaysFilters(cfg *config.Config) ([]filters.Filter, error) {
	var out []filters.Filter
	add := func(path, name string, options map[string]any) error {
		env := &filters.Env{Path: path, Logger: rt.logger.With("filter", name), Services: rt.builder.Services}
		f, err := rt.builder.Registry.Build(env, name, options)
		if err != nil {
			return err
		}
		out = append(out, f)
		return nil
	}
	if cfg.RequestID.On() {
		if err := add("request_id", requestid.FilterName, cfg.RequestID.Options); err != nil {
			return nil, err
		}
	}
	if err := add("metrics", metrics.FilterName, nil); err != nil {
		return nil, err
	}
	if cfg.AccessLog.On() {
		if err := add("access_log", accesslog.FilterName, cfg.AccessLog.Options); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (rt *runtime) close() {
	if rt.origins != nil {
		rt.origins.Close()
	}
	rt.builder.Close()
	rt.limiters.Close()
	if err := rt.outputs.Close(); err != nil {
		rt.logger.Warn("closing access log outputs", "error", fmt.Sprint(err))
	}
}

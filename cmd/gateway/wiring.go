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
	builder  *proxy.Builder
}

func newRuntime(logger *slog.Logger) *runtime {
	rt := &runtime{logger: logger, metrics: metrics.New(), outputs: accesslog.NewOutputs(nil, nil)}
	rt.limiters = limits.New(limits.Options{OnReject: rt.metrics.IncRateLimited})
	rt.builder = proxy.NewBuilder(logger)
	rt.builder.Always = rt.alwaysFilters
	rt.builder.OnAttempt = func(origin string, a filters.Attempt) {
		rt.metrics.ObserveOriginAttempt(origin, a.Instance, a.Outcome, a.Duration)
	}
	ratelimit.LimitersKey.Provide(rt.builder.Services, rt.limiters)
	metrics.ServiceKey.Provide(rt.builder.Services, rt.metrics)
	accesslog.OutputsKey.Provide(rt.builder.Services, rt.outputs)
	return rt
}

// build compiles cfg into a snapshot without touching the running state.
func (rt *runtime) build(cfg *config.Config) (*proxy.Snapshot, error) {
	ratelimit.PoliciesKey.Provide(rt.builder.Services, cfg.RateLimit)
	return rt.builder.Build(cfg)
}

// activate applies the parts of cfg that live outside the snapshot; call
// it right before the snapshot is swapped in.
func (rt *runtime) activate(cfg *config.Config) error {
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
	rt.builder.Close()
	rt.limiters.Close()
	if err := rt.outputs.Close(); err != nil {
		rt.logger.Warn("closing access log outputs", "error", fmt.Sprint(err))
	}
}

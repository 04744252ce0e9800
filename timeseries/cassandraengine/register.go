package cassandraengine

import (
	"context"
	"errors"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Name is the engine's name in config (namespaces.NAME.engine: cassandra).
const Name = "cassandra"

func init() {
	timeseries.RegisterEngine(Name, timeseries.EngineKind{
		ValidateOptions:   validateOptions,
		ValidateNamespace: validateNamespace,
		Open:              openFromConfig,
	})
}

func validateOptions(raw map[string]any) error {
	var o Options
	if err := decodeStrict(raw, &o); err != nil {
		return err
	}
	o.ApplyDefaults()
	return o.Validate()
}

func validateNamespace(raw map[string]any) error {
	var n NamespaceOptions
	if err := decodeStrict(raw, &n); err != nil {
		return err
	}
	return n.validate()
}

func namespacesFromConfig(in map[string]timeseries.EngineNamespace) (map[string]Namespace, error) {
	out := make(map[string]Namespace, len(in))
	var errs []error
	for name, n := range in {
		var opts NamespaceOptions
		if err := decodeStrict(n.Options, &opts); err != nil {
			errs = append(errs, prefixed(name+".", err))
			continue
		}
		tp := n.TimePartition
		out[name] = Namespace{Options: opts, SliceMs: tp.SecondsPerTimeSlice * 1000, BucketMs: tp.SecondsPerTimeBucket * 1000, EventBuckets: tp.EventBuckets}
	}
	return out, errors.Join(errs...)
}

func openFromConfig(ctx context.Context, raw map[string]any, in map[string]timeseries.EngineNamespace, logf func(string, ...any)) (storage.Engine, error) {
	var o Options
	if err := decodeStrict(raw, &o); err != nil {
		return nil, err
	}
	namespaces, err := namespacesFromConfig(in)
	if err != nil {
		return nil, err
	}
	return Open(ctx, o, namespaces, logf)
}

// ConfigureNamespaces implements timeseries.NamespaceConfigurer (live reload).
func (e *Engine) ConfigureNamespaces(ctx context.Context, in map[string]timeseries.EngineNamespace) error {
	namespaces, err := namespacesFromConfig(in)
	if err != nil {
		return err
	}
	return e.Configure(ctx, namespaces)
}

var _ timeseries.NamespaceConfigurer = (*Engine)(nil)

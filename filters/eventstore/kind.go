package eventstore

import (
	"errors"
	"fmt"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/timeseries"
)

// Services the "timeseries" endpoint kind uses.
var (
	// StoreKey is the embedded store routes serve; absent or nil while no
	// namespace is configured (and when only validating a config).
	StoreKey = filters.NewServiceKey[*timeseries.Service]("eventstore.store")
	// StoreConfigKey is the timeseries section of the config being built,
	// so a route's namespaces are checked against it, not against the
	// store's running config.
	StoreConfigKey = filters.NewServiceKey[timeseries.Config]("eventstore.config")
)

func init() {
	filters.RegisterEndpoint(FilterName, func() Options { return Options{} }, buildEndpoint)
}

// buildEndpoint builds the endpoint of a route that sets "timeseries:".
func buildEndpoint(env *filters.Env, o Options) (filters.Filter, error) {
	cfg, _ := StoreConfigKey.Lookup(env.Services)
	if len(cfg.Namespaces) == 0 {
		return nil, errors.New("the timeseries section defines no namespaces to serve")
	}
	var errs []error
	for j, ns := range o.Namespaces {
		if _, ok := cfg.Namespaces[ns]; !ok {
			errs = append(errs, fmt.Errorf("namespaces[%d]: unknown namespace %q", j, ns))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	svc, _ := StoreKey.Lookup(env.Services)
	return New(svc, o), nil
}

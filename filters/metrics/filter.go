package metrics

import (
	"errors"

	"github.com/floodgate-dev/floodgate/filters"
)

// FilterName and FilterOrder place "metrics" late in the outbound stage.
// It records on completion (OnDone), so its order only matters for the
// passport; late keeps it next to the access log.
const (
	FilterName  = "metrics"
	FilterOrder = filters.OrderMetrics
)

// ServiceKey is the long-lived *Metrics the gateway provides.
var ServiceKey = filters.NewServiceKey[*Metrics]("metrics")

func init() {
	filters.RegisterBuiltin(FilterName, filters.EveryChain(), func() FilterOptions { return FilterOptions{} }, build)
}

// FilterOptions configure "metrics"; it has none.
type FilterOptions struct{}

type filter struct {
	filters.Base
	hook func(*filters.Context)
}

func build(env *filters.Env, _ FilterOptions) (filters.Filter, error) {
	m, ok := ServiceKey.Lookup(env.Services)
	if !ok || m == nil {
		return nil, errors.New("metrics needs the gateway's metrics.Metrics service (a wiring bug)")
	}
	return &filter{Base: filters.NewBase(FilterName, filters.Outbound, FilterOrder), hook: m.Hook()}, nil
}

// Apply defers the recording to completion, when the response body has
// been streamed and the duration and final category are known.
func (f *filter) Apply(c *filters.Context) error {
	c.OnDone(f.hook)
	return nil
}

var _ filters.Filter = (*filter)(nil)

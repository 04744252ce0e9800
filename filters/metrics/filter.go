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
	FilterOrder = 900
)

// ServiceKey is the long-lived *Metrics the gateway provides.
var ServiceKey = filters.NewServiceKey[*Metrics]("metrics")

func init() {
	filters.Register(FilterName, func() FilterOptions { return FilterOptions{} }, build)
}

// FilterOptions configure "metrics"; it has none.
type FilterOptions struct{}

type filter struct{ hook func(*filters.Context) }

var _ filters.Filter = (*filter)(nil)

func build(env *filters.Env, _ FilterOptions) (filters.Filter, error) {
	m, ok := ServiceKey.Lookup(env.Services)
	if !ok || m == nil {
		return nil, errors.New("metrics needs the gateway's metrics.Metrics service (a wiring bug)")
	}
	return &filter{hook: m.Hook()}, nil
}

func (f *filter) Name() string                       { return FilterName }
func (f *filter) Stage() filters.Stage               { return filters.Outbound }
func (f *filter) Order() int                         { return FilterOrder }
func (f *filter) ShouldFilter(*filters.Context) bool { return true }

// Apply defers the recording to completion, when the response body has
// been streamed and the duration and final category are known.
func (f *filter) Apply(c *filters.Context) error {
	c.OnDone(f.hook)
	return nil
}

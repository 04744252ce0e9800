package filters

// Base supplies what every filter repeats: its name, stage and order, and
// a ShouldFilter that always runs it. Embed it and write Apply:
//
//	type stamp struct {
//		filters.Base
//		header string
//	}
//
//	func newStamp(o Options) *stamp {
//		return &stamp{Base: filters.NewBase("stamp", filters.Inbound, o.Order), header: o.Header}
//	}
//
// A filter that runs only for some requests overrides ShouldFilter.
type Base struct {
	name  string
	stage Stage
	order int
}

// NewBase returns a Base for a filter called name in stage at order.
func NewBase(name string, stage Stage, order int) Base {
	return Base{name: name, stage: stage, order: order}
}

// EndpointBase returns the Base of an endpoint: endpoints have no order,
// since a chain has exactly one.
func EndpointBase(name string) Base { return NewBase(name, Endpoint, 0) }

// Name returns the filter's name.
func (b Base) Name() string { return b.name }

// Stage returns the filter's stage.
func (b Base) Stage() Stage { return b.stage }

// Order returns the filter's order within its stage.
func (b Base) Order() int { return b.order }

// ShouldFilter runs the filter for every request.
func (b Base) ShouldFilter(*Context) bool { return true }

// Describer is implemented by filters and endpoints that show their
// settings in the admin API (/admin/routes, /admin/filters).
type Describer interface {
	Describe() any
}

package filters

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/floodgate-dev/floodgate/decode"
)

// Env is what a factory gets to build a filter instance: where the instance
// sits in the config (for error messages), the route it is built for, a
// logger, and the snapshot's shared services (origin registry, throttlers,
// metrics) looked up by typed key.
type Env struct {
	// Path is the instance's key path in the config, e.g.
	// "routes[2].filters[0]".
	Path string
	// Route is the route the instance serves; nil for an instance shared by
	// every chain (global filters, built-ins installed everywhere) and for
	// the no-route chain.
	Route    *Route
	Logger   *slog.Logger
	Services *Services
}

// Route is what a factory knows about the route it builds for.
type Route struct {
	Name  string
	Index int
	// Endpoint is the route's endpoint kind ("origin", "static", ...).
	Endpoint string
	// Origin is the origin the route's endpoint sends to, "" if none (see
	// OriginEndpoint); for an origin group, the group's name.
	Origin string
	// ActiveOrigin, set for an origin group's route, names the origin a
	// request sent now goes to (see OriginGroupEndpoint).
	ActiveOrigin func() string
}

// OriginEndpoint is implemented by endpoints that send to a named origin;
// built-ins installed on "routes with an origin" read it.
type OriginEndpoint interface {
	Filter
	OriginName() string
}

// OriginGroupEndpoint is implemented by endpoints whose origin is chosen
// per request (an origin group's active member).
type OriginGroupEndpoint interface {
	OriginEndpoint
	ActiveOrigin() string
}

// Services holds the shared runtime objects filters may need. Values are
// stored once while the gateway wires a snapshot and read by factories.
type Services struct {
	vals []bagEntry
}

// ServiceKey names one shared service.
type ServiceKey[T any] struct{ name string }

// NewServiceKey creates a key for a shared service.
func NewServiceKey[T any](name string) *ServiceKey[T] { return &ServiceKey[T]{name: name} }

// Provide stores v under k.
func (k *ServiceKey[T]) Provide(s *Services, v T) {
	for i := range s.vals {
		if s.vals[i].key == k {
			s.vals[i].val = v
			return
		}
	}
	s.vals = append(s.vals, bagEntry{key: k, val: v})
}

// Clone returns a copy of s that a snapshot build can add to without
// changing s.
func (s *Services) Clone() *Services {
	if s == nil {
		return &Services{}
	}
	return &Services{vals: append([]bagEntry(nil), s.vals...)}
}

// Lookup returns the service stored under k.
func (k *ServiceKey[T]) Lookup(s *Services) (T, bool) {
	var zero T
	if s == nil {
		return zero, false
	}
	for _, e := range s.vals {
		if e.key == k {
			v, ok := e.val.(T)
			return v, ok
		}
	}
	return zero, false
}

// Install is a built-in filter's install rule: which chains it joins
// without being listed in the config.
type Install struct {
	// Where picks the chains: route is nil for the no-route chain.
	Where func(route *Route) bool
	// PerRoute builds one instance per chain with Env.Route set; otherwise
	// one instance serves every chain it joins.
	PerRoute bool
}

// EveryChain installs a built-in on every chain, the no-route chain
// included, as one shared instance.
func EveryChain() Install { return Install{Where: func(*Route) bool { return true }} }

// EachRouteWithOrigin installs a built-in on every route whose endpoint
// sends to an origin, one instance per route.
func EachRouteWithOrigin() Install {
	return Install{Where: func(r *Route) bool { return r != nil && r.Origin != "" }, PerRoute: true}
}

// Builtin describes a registered built-in filter.
type Builtin struct {
	Name    string
	Install Install
}

type factory struct {
	build func(env *Env, options any) (Filter, error)
}

// Registry maps names to factories in two namespaces: filters (listed in
// config, or built-ins installed by rule) and endpoint kinds (the key a
// route sets: origin, static, timeseries, ...). Packages register at init
// time; the gateway builds instances from config at load and reload.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]factory
	builtins  map[string]Install
	endpoints map[string]factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]factory{}, builtins: map[string]Install{}, endpoints: map[string]factory{}}
}

// Default is the registry the gateway uses. Filter packages add themselves
// to it from init functions; nothing else writes to it.
var Default = NewRegistry()

// Register adds a filter factory to the Default registry. See RegisterIn.
func Register[O any](name string, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	RegisterIn(Default, name, defaults, build)
}

// RegisterIn adds a filter factory named name to r: config lists instances
// of it by name, globally or per route. defaults returns the options with
// their default values; YAML options are decoded on top of them with the
// decode toolkit (units, unknown keys rejected), then validated if O has a
// Validate() error method. Registering a name twice panics: it is a
// programming error caught at start-up, never at request time.
func RegisterIn[O any](r *Registry, name string, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	r.add(r.factories, "filter", name, typedFactory(".options", defaults, build))
}

// RegisterBuiltin adds a built-in filter to the Default registry. See
// RegisterBuiltinIn.
func RegisterBuiltin[O any](name string, install Install, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	RegisterBuiltinIn(Default, name, install, defaults, build)
}

// RegisterBuiltinIn adds a built-in filter: the gateway installs it on the
// chains install picks without the config listing it. The top-level config
// section named after it ("access_log: {enabled: false, options: ...}")
// switches it off or passes options. It can also be listed like any
// filter.
func RegisterBuiltinIn[O any](r *Registry, name string, install Install, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	if install.Where == nil {
		panic(fmt.Sprintf("filters: built-in %q has no install rule", name))
	}
	r.add(r.factories, "filter", name, typedFactory(".options", defaults, build))
	r.mu.Lock()
	r.builtins[name] = install
	r.mu.Unlock()
}

// RegisterEndpoint adds an endpoint kind to the Default registry. See
// RegisterEndpointIn.
func RegisterEndpoint[O any](kind string, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	RegisterEndpointIn(Default, kind, defaults, build)
}

// RegisterEndpointIn adds an endpoint kind: a route that sets the key kind
// gets the endpoint build returns, with the key's value decoded into O
// ("origin: users" decodes into a string, "static: {status: 204}" into a
// struct). build must return an Endpoint-stage filter.
func RegisterEndpointIn[O any](r *Registry, kind string, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	r.add(r.endpoints, "endpoint kind", kind, typedFactory("", defaults, func(env *Env, opts O) (Filter, error) {
		f, err := build(env, opts)
		if err == nil && f.Stage() != Endpoint {
			return nil, fmt.Errorf("endpoint kind %q built a %s filter (a programming error)", kind, f.Stage())
		}
		return f, err
	}))
}

func (r *Registry) add(into map[string]factory, what, name string, f factory) {
	if name == "" || strings.ContainsAny(name, " \t\n.") {
		panic(fmt.Sprintf("filters: invalid %s name %q", what, name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := into[name]; dup {
		panic(fmt.Sprintf("filters: %s %q registered twice", what, name))
	}
	into[name] = f
}

// typedFactory decodes options over defaults, validates them and builds;
// every error names its key path (env.Path + optionsAt + the option's key).
func typedFactory[O any](optionsAt string, defaults func() O, build func(env *Env, opts O) (Filter, error)) factory {
	return factory{build: func(env *Env, options any) (Filter, error) {
		opts, err := decode.Section(env.Path+optionsAt, options, defaults)
		if err != nil {
			return nil, err
		}
		f, err := build(env, opts)
		if err != nil {
			return nil, decode.Prefix(env.Path, err)
		}
		return f, nil
	}}
}

// Build creates an instance of the filter named name.
func (r *Registry) Build(env *Env, name string, options any) (Filter, error) {
	r.mu.RLock()
	f, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		var e decode.Errors
		e.Add(env.Path+".name", "unknown filter %q (registered: %s)", name, strings.Join(r.Names(), ", "))
		return nil, &e
	}
	return f.build(env, options)
}

// BuildEndpoint creates the endpoint of kind for the route env describes;
// env.Path is the kind's key path ("routes[2].static").
func (r *Registry) BuildEndpoint(env *Env, kind string, options any) (Filter, error) {
	r.mu.RLock()
	f, ok := r.endpoints[kind]
	r.mu.RUnlock()
	if !ok {
		var e decode.Errors
		e.Add(env.Path, "unknown key or endpoint kind %q (endpoint kinds: %s)", kind, strings.Join(r.EndpointKinds(), ", "))
		return nil, &e
	}
	return f.build(env, options)
}

// Names lists the registered filter names (built-ins included), sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.factories))
}

// EndpointKinds lists the registered endpoint kinds, sorted.
func (r *Registry) EndpointKinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.endpoints))
}

// IsEndpointKind reports whether kind is a registered endpoint kind.
func (r *Registry) IsEndpointKind(kind string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.endpoints[kind]
	return ok
}

// Builtins lists the registered built-in filters, sorted by name.
func (r *Registry) Builtins() []Builtin {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Builtin, 0, len(r.builtins))
	for _, n := range slices.Sorted(maps.Keys(r.builtins)) {
		out = append(out, Builtin{Name: n, Install: r.builtins[n]})
	}
	return out
}

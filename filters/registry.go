package filters

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/floodgate-dev/floodgate/config"
)

// Env is what a factory gets to build a filter instance: where the instance
// sits in the config (for error messages), a logger, and the snapshot's
// shared services (origin registry, throttlers, metrics) looked up by typed
// key.
type Env struct {
	// Path is the instance's key path in the config, e.g.
	// "routes[2].filters[0]".
	Path     string
	Logger   *slog.Logger
	Services *Services
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

type factory struct {
	build func(env *Env, options map[string]any) (Filter, error)
}

// Registry maps filter names to factories. Operators register at init
// time; the gateway builds instances from config at load and reload.
type Registry struct {
	mu        sync.RWMutex
	factories map[string]factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]factory{}} }

// Default is the registry the gateway uses. Filter packages add themselves
// to it from init functions; nothing else writes to it.
var Default = NewRegistry()

// Register adds a factory to the Default registry. See RegisterIn.
func Register[O any](name string, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	RegisterIn(Default, name, defaults, build)
}

// RegisterIn adds a factory named name to r. defaults returns the options
// with their default values; YAML options are decoded on top of them with
// unknown keys rejected, then validated if O has a Validate() error method.
// Registering a name twice panics: it is a programming error caught at
// start-up, never at request time.
func RegisterIn[O any](r *Registry, name string, defaults func() O, build func(env *Env, opts O) (Filter, error)) {
	if name == "" || strings.ContainsAny(name, " \t\n") {
		panic(fmt.Sprintf("filters: invalid filter name %q", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		panic(fmt.Sprintf("filters: filter %q registered twice", name))
	}
	r.factories[name] = factory{build: func(env *Env, options map[string]any) (Filter, error) {
		opts := defaults()
		if len(options) > 0 {
			if err := config.Decode(options, &opts); err != nil {
				return nil, fmt.Errorf("%s.options: %w", env.Path, cleanDecodeError(err))
			}
		}
		if err := validateOptions(&opts); err != nil {
			return nil, prefixEach(env.Path+".options.", err)
		}
		f, err := build(env, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env.Path, err)
		}
		return f, nil
	}}
}

type validator interface{ Validate() error }

// validateOptions runs O's Validate method, whether O is a struct with
// Validate on its value or pointer, or is itself a pointer type.
func validateOptions[O any](opts *O) error {
	if v, ok := any(opts).(validator); ok {
		return v.Validate()
	}
	if v, ok := any(*opts).(validator); ok && !isNilPointer(*opts) {
		return v.Validate()
	}
	return nil
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// Build creates an instance of the filter named name.
func (r *Registry) Build(env *Env, name string, options map[string]any) (Filter, error) {
	r.mu.RLock()
	f, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s.name: unknown filter %q (registered: %s)", env.Path, name, strings.Join(r.Names(), ", "))
	}
	return f.build(env, options)
}

// Names lists the registered filter names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// prefixEach puts the key-path prefix on every error of a joined error, so
// each problem a Validate reports names its full key path.
func prefixEach(prefix string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		out = append(out, fmt.Errorf("%s%w", prefix, e))
	}
	return errors.Join(out...)
}

// cleanDecodeError flattens mapstructure's multi-line error into one line.
func cleanDecodeError(err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	msg = strings.Join(strings.Fields(msg), " ")
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s): ")
	return errors.New(msg)
}

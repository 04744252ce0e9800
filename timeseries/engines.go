package timeseries

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/pebbleengine"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// EmbeddedEngine is the engine a namespace uses when it names none: pebble, in the data dir.
const EmbeddedEngine = "embedded"

// EngineKind is a storage engine that namespaces select by name (namespaces.NAME.engine).
// Engine packages register one from init; a binary compiles an engine in by importing its
// package (see cmd/timeseries/engines.go).
type EngineKind struct {
	// ValidateOptions checks the engine's options (the subtree engines.NAME); error messages
	// start with key paths relative to it.
	ValidateOptions func(options map[string]any) error
	// ValidateNamespace checks one namespace's engine_options; error messages start with key
	// paths relative to it.
	ValidateNamespace func(options map[string]any) error
	// Open opens the engine for the namespaces that select it.
	Open func(ctx context.Context, options map[string]any, namespaces map[string]EngineNamespace, logf func(string, ...any)) (storage.Engine, error)
}

// EngineNamespace is what an engine is told about one namespace that selects it.
type EngineNamespace struct {
	// Options is the namespace's engine_options subtree.
	Options       map[string]any
	TimePartition TimePartition
}

// NamespaceConfigurer is implemented by engines that take a new set of namespaces (or new
// per-namespace options) on a live reload.
type NamespaceConfigurer interface {
	ConfigureNamespaces(ctx context.Context, namespaces map[string]EngineNamespace) error
}

var (
	engineKindsMu sync.RWMutex
	engineKinds   = map[string]EngineKind{}
)

// RegisterEngine makes an engine selectable by name. It is meant for init functions and
// panics on an empty, reserved or duplicate name.
func RegisterEngine(name string, k EngineKind) {
	engineKindsMu.Lock()
	defer engineKindsMu.Unlock()
	if name == "" || name == EmbeddedEngine {
		panic(fmt.Sprintf("timeseries: engine name %q is reserved", name))
	}
	if _, dup := engineKinds[name]; dup {
		panic(fmt.Sprintf("timeseries: engine %q registered twice", name))
	}
	if k.Open == nil || k.ValidateOptions == nil || k.ValidateNamespace == nil {
		panic(fmt.Sprintf("timeseries: engine %q needs Open, ValidateOptions and ValidateNamespace", name))
	}
	engineKinds[name] = k
}

// EngineNames lists the engines compiled in, sorted, including the embedded one.
func EngineNames() []string {
	engineKindsMu.RLock()
	defer engineKindsMu.RUnlock()
	out := []string{EmbeddedEngine}
	for n := range engineKinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func engineKind(name string) (EngineKind, bool) {
	engineKindsMu.RLock()
	defer engineKindsMu.RUnlock()
	k, ok := engineKinds[name]
	return k, ok
}

// engineOf is the engine a namespace selects.
func (n *NamespaceConfig) engineOf() string {
	if n.Engine == "" {
		return EmbeddedEngine
	}
	return n.Engine
}

// validateEngines checks engine selection and options; messages carry key paths relative to
// Config.
func (c *Config) validateEngines() []error {
	var errs []error
	names := make([]string, 0, len(c.Namespaces))
	for n := range c.Namespaces {
		names = append(names, n)
	}
	sort.Strings(names)
	used := map[string]bool{}
	for _, name := range names {
		ns := c.Namespaces[name]
		eng := ns.engineOf()
		if eng == EmbeddedEngine {
			if len(ns.EngineOptions) > 0 {
				errs = append(errs, fmt.Errorf("namespaces.%s.engine_options: the embedded engine takes no options (set engine to one of %v)", name, EngineNames()))
			}
			continue
		}
		k, ok := engineKind(eng)
		if !ok {
			errs = append(errs, fmt.Errorf("namespaces.%s.engine: unknown engine %q (compiled in: %v)", name, eng, EngineNames()))
			continue
		}
		used[eng] = true
		if err := k.ValidateNamespace(ns.EngineOptions); err != nil {
			errs = append(errs, prefixErrors("namespaces."+name+".engine_options.", err))
		}
	}
	engines := make([]string, 0, len(c.Engines))
	for n := range c.Engines {
		engines = append(engines, n)
	}
	for n := range used {
		if _, ok := c.Engines[n]; !ok {
			engines = append(engines, n) // validated with no options: reports what is required
		}
	}
	sort.Strings(engines)
	for _, eng := range engines {
		k, ok := engineKind(eng)
		if !ok {
			errs = append(errs, fmt.Errorf("engines.%s: unknown engine (compiled in: %v)", eng, EngineNames()))
			continue
		}
		if err := k.ValidateOptions(c.Engines[eng]); err != nil {
			errs = append(errs, prefixErrors("engines."+eng+".", err))
		}
	}
	return errs
}

// engineNamespaces lists, per non-embedded engine, the namespaces that select it.
func engineNamespaces(cfg Config) map[string]map[string]EngineNamespace {
	out := map[string]map[string]EngineNamespace{}
	for name, ns := range cfg.Namespaces {
		eng := ns.engineOf()
		if eng == EmbeddedEngine {
			continue
		}
		if out[eng] == nil {
			out[eng] = map[string]EngineNamespace{}
		}
		out[eng][name] = EngineNamespace{Options: ns.EngineOptions, TimePartition: ns.TimePartition}
	}
	return out
}

// engineOpenTimeout bounds connecting to a distributed engine and creating its schema.
const engineOpenTimeout = 2 * time.Minute

// openEngines opens the embedded engine in dir and every engine a namespace selects. With
// only the embedded engine in use it returns pebble itself; otherwise a router that sends
// each namespace's calls to its engine.
func openEngines(dir string, cfg Config, logf func(string, ...any)) (storage.Engine, error) {
	cfg = cloneConfig(cfg)
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	emb, err := pebbleengine.Open(dir, pebbleengine.Options{})
	if err != nil {
		return nil, err
	}
	byEngine := engineNamespaces(cfg)
	if len(byEngine) == 0 {
		return emb, nil
	}
	r := &engineRouter{embedded: emb, opened: map[string]storage.Engine{}}
	ctx, cancel := context.WithTimeout(context.Background(), engineOpenTimeout)
	defer cancel()
	for name, namespaces := range byEngine {
		k, _ := engineKind(name)
		eng, err := k.Open(ctx, cfg.Engines[name], namespaces, logf)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("engines.%s: %w", name, err), r.Close())
		}
		r.opened[name] = eng
	}
	r.assign(cfg)
	return r, nil
}

// engineRouter is the storage.Engine of a Service whose namespaces live on several engines.
type engineRouter struct {
	embedded storage.Engine
	opened   map[string]storage.Engine // by engine name; fixed after open
	byNS     atomic.Pointer[map[string]storage.Engine]
}

var _ storage.Engine = (*engineRouter)(nil)

func (r *engineRouter) assign(cfg Config) {
	m := make(map[string]storage.Engine, len(cfg.Namespaces))
	for name, ns := range cfg.Namespaces {
		if eng := ns.engineOf(); eng != EmbeddedEngine {
			m[name] = r.opened[eng]
		}
	}
	r.byNS.Store(&m)
}

func (r *engineRouter) pick(ns string) storage.Engine {
	if e, ok := (*r.byNS.Load())[ns]; ok {
		return e
	}
	return r.embedded
}

// reconfigure moves the router to cfg: a namespace may not change engines while served, and
// an engine not opened at start needs a restart; engines that take namespace changes get
// theirs.
func (r *engineRouter) reconfigure(cfg, prev Config) error {
	var errs []error
	for name, ns := range cfg.Namespaces {
		eng := ns.engineOf()
		if old, ok := prev.Namespaces[name]; ok && old.engineOf() != eng {
			errs = append(errs, fmt.Errorf("namespaces.%s.engine: cannot change while the service runs (from %q to %q)", name, old.engineOf(), eng))
		}
		if _, open := r.opened[eng]; eng != EmbeddedEngine && !open {
			errs = append(errs, fmt.Errorf("namespaces.%s.engine: engine %q was not in use at start; restart to open it", name, eng))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	byEngine := engineNamespaces(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), engineOpenTimeout)
	defer cancel()
	for name, eng := range r.opened {
		if c, ok := eng.(NamespaceConfigurer); ok {
			if err := c.ConfigureNamespaces(ctx, byEngine[name]); err != nil {
				errs = append(errs, fmt.Errorf("engines.%s: %w", name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.assign(cfg)
	return nil
}

// reconfigureEngines is Reconfigure's hook: with several engines in use the router follows
// the new config; with one engine, selecting another engine needs a restart.
func (s *Service) reconfigureEngines(cfg, prev Config) error {
	if r, ok := s.engine.(*engineRouter); ok {
		return r.reconfigure(cfg, prev)
	}
	if !s.ownsEngine {
		return nil // the caller chose the engine (New); namespaces' engine field does not apply
	}
	var errs []error
	for name, ns := range cfg.Namespaces {
		if eng := ns.engineOf(); eng != EmbeddedEngine {
			errs = append(errs, fmt.Errorf("namespaces.%s.engine: engine %q was not in use at start; restart to open it", name, eng))
		}
	}
	return errors.Join(errs...)
}

func (r *engineRouter) Apply(ctx context.Context, b *storage.Batch, d storage.Durability) error {
	return r.pick(b.Namespace).Apply(ctx, b, d)
}

func (r *engineRouter) ScanPartition(ctx context.Context, ns string, p storage.Partition, tr storage.TimeRange, after *storage.Cursor, fn func(storage.Event) bool) error {
	return r.pick(ns).ScanPartition(ctx, ns, p, tr, after, fn)
}

func (r *engineRouter) ScanIndex(ctx context.Context, ns string, ip storage.IndexPartition, m storage.IndexMatch, tr storage.TimeRange, after *storage.Ref, fn func(storage.Ref) bool) error {
	return r.pick(ns).ScanIndex(ctx, ns, ip, m, tr, after, fn)
}

func (r *engineRouter) GetEvent(ctx context.Context, ns string, p storage.Partition, t int64, id string) (storage.Event, bool, error) {
	return r.pick(ns).GetEvent(ctx, ns, p, t, id)
}

func (r *engineRouter) ScanIndexRows(ctx context.Context, ns string, slice, bucket int64, tr storage.TimeRange, fn func(storage.Ref, []storage.IndexEntry) bool) error {
	return r.pick(ns).ScanIndexRows(ctx, ns, slice, bucket, tr, fn)
}

func (r *engineRouter) Slices(ctx context.Context, ns string) ([]storage.SliceMeta, error) {
	return r.pick(ns).Slices(ctx, ns)
}

func (r *engineRouter) PutSlice(ctx context.Context, ns string, m storage.SliceMeta) error {
	return r.pick(ns).PutSlice(ctx, ns, m)
}

func (r *engineRouter) DropSlice(ctx context.Context, ns string, slice int64) error {
	return r.pick(ns).DropSlice(ctx, ns, slice)
}

// Close closes every engine, the embedded one last.
func (r *engineRouter) Close() error {
	var errs []error
	for _, e := range r.opened {
		errs = append(errs, e.Close())
	}
	errs = append(errs, r.embedded.Close())
	return errors.Join(errs...)
}

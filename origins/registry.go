package origins

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the registry's dependencies.
type Options struct {
	// Logger receives breaker, health and discovery events; nil means slog.Default().
	Logger *slog.Logger
	// Prober runs active health checks; nil means an HTTPProber owned by the registry.
	Prober Prober
	Hooks  Hooks
}

// Registry holds the named origins. Get is lock-free; Update and Close serialise.
type Registry struct {
	opts    Options
	origins atomic.Pointer[map[string]*Origin]

	mu     sync.Mutex
	subs   map[uint64]*registrySub
	nextID uint64
	closed bool
	prober *HTTPProber // owned only when Options.Prober was nil

	// Origin groups (group.go): published like origins; groupMu
	// serialises their evaluation and SetGroups.
	groups    atomic.Pointer[map[string]*Group]
	groupMu   sync.Mutex
	kick      chan struct{}
	groupTask task // the evaluator, while any group exists
	cutoff    atomic.Pointer[CutoffSource]
}

type registrySub struct {
	fn      func(Change)
	cancels map[string]func()
}

// NewRegistry validates cfgs and starts every origin (discovery and health checks).
func NewRegistry(cfgs map[string]OriginConfig, opts Options) (*Registry, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Registry{opts: opts, subs: map[uint64]*registrySub{}, kick: make(chan struct{}, 1)}
	noGroups := map[string]*Group{}
	r.groups.Store(&noGroups)
	if r.opts.Prober == nil {
		r.prober = NewHTTPProber(time.Second)
		r.opts.Prober = r.prober.Probe
	}
	empty := map[string]*Origin{}
	r.origins.Store(&empty)
	if err := r.Update(cfgs); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Get returns the named origin.
func (r *Registry) Get(name string) (*Origin, bool) {
	o, ok := (*r.origins.Load())[name]
	return o, ok
}

// Names lists the origins, sorted.
func (r *Registry) Names() []string {
	return slices.Sorted(maps.Keys(*r.origins.Load()))
}

// Update applies a new configuration: new origins start, removed ones stop (their
// instances are retired and drain), existing ones are reconfigured in place and keep
// their instances' state. An invalid configuration changes nothing.
func (r *Registry) Update(cfgs map[string]OriginConfig) error {
	if err := ValidateOrigins(cfgs); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	cur := *r.origins.Load()
	next := make(map[string]*Origin, len(cfgs))
	var created []*Origin
	for _, name := range slices.Sorted(maps.Keys(cfgs)) {
		cfg := cfgs[name]
		o, ok := cur[name]
		if ok {
			o.reconfigure(cfg)
		} else {
			o = newOrigin(name, cfg, r.opts.Logger, r.opts.Hooks)
			o.changed = r.kickGroups
			created = append(created, o)
		}
		// Before publishing, so a new origin with a static list is never seen empty.
		if err := r.syncDiscovery(o, cfg); err != nil {
			for _, o := range created {
				o.bg.discovery.stop()
				o.close()
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		next[name] = o
	}
	r.origins.Store(&next)
	for _, name := range slices.Sorted(maps.Keys(cfgs)) {
		if t := cfgs[name].TLS; t.Enabled && t.InsecureSkipVerify {
			r.opts.Logger.Warn("origin TLS certificates are not verified (insecure_skip_verify): anyone on the path can impersonate the origin",
				"key", "origins."+name+".tls.insecure_skip_verify")
		}
	}
	for name, o := range cur {
		if _, kept := next[name]; !kept {
			r.stopOrigin(o)
		}
	}
	for _, o := range created {
		for _, s := range r.subs {
			s.cancels[o.name] = o.Subscribe(s.fn)
		}
	}
	for _, o := range next {
		r.syncHealth(o, cfgs[o.name])
		r.syncOutliers(o, cfgs[o.name])
	}
	r.kickGroups() // members may have been replaced
	return nil
}

// syncDiscovery (re)starts o's discovery source when its kind or settings
// changed; the old watcher stops first, so it cannot overwrite the new
// source's instances afterwards.
func (r *Registry) syncDiscovery(o *Origin, cfg OriginConfig) error {
	key := discoveryKey(cfg)
	if o.bg.discovery.key == key {
		return nil
	}
	o.bg.discovery.stop()
	src, opts := discoveryOf(cfg)
	if src == nil {
		return nil // unreachable after validation
	}
	run, err := src.start(opts, o, discoveryEnv{log: r.opts.Logger.With("origin", o.name), hooks: r.opts.Hooks})
	if err != nil {
		return err
	}
	if run == nil {
		o.bg.discovery = task{key: key} // applied once, nothing to stop
		return nil
	}
	o.bg.discovery = startTask(key, run)
	return nil
}

// syncHealth (re)starts the health checks whose settings changed.
func (r *Registry) syncHealth(o *Origin, cfg OriginConfig) {
	hc := cfg.HealthCheck
	var healthKey string
	if hc.Interval > 0 {
		healthKey = fmt.Sprintf("%+v %+v", hc, cfg.TLS)
	}
	if o.bg.health.key != healthKey {
		o.bg.health.stop()
		if healthKey == "" {
			// Checks switched off: nobody would ever mark instances healthy again.
			for _, in := range o.Instances() {
				in.healthy.Store(true)
				in.hcOK, in.hcFail = 0, 0
			}
		} else {
			probe, closeProbe := r.proberFor(cfg.TLS)
			o.bg.health = startTask(healthKey, func(ctx context.Context) {
				defer closeProbe()
				o.runHealthChecks(ctx, hc, probe)
			})
		}
	}
}

// syncOutliers (re)starts outlier detection when its settings changed;
// switched off or changed, every ejection ends.
func (r *Registry) syncOutliers(o *Origin, cfg OriginConfig) {
	od := cfg.OutlierDetection
	var key string
	if od.Enabled {
		key = fmt.Sprintf("%+v", od)
	}
	if o.bg.outlier.key == key {
		return
	}
	o.bg.outlier.stop()
	o.outliers.reset()
	if key != "" {
		o.bg.outlier = startTask(key, func(ctx context.Context) { o.runOutlierDetection(ctx, od) })
	}
}

func (r *Registry) stopOrigin(o *Origin) {
	o.bg.discovery.stop()
	o.bg.health.stop()
	o.bg.outlier.stop()
	for _, s := range r.subs {
		delete(s.cancels, o.name)
	}
	o.close()
}

// Subscribe calls fn for every instance change of every origin, present and future;
// the current instances arrive first as Added. A removed origin reports all its
// instances as Removed. fn must be quick: it runs with the origin's set locked.
func (r *Registry) Subscribe(fn func(Change)) (cancel func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextID
	r.nextID++
	s := &registrySub{fn: fn, cancels: map[string]func(){}}
	r.subs[id] = s
	for name, o := range *r.origins.Load() {
		s.cancels[name] = o.Subscribe(fn)
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if s, ok := r.subs[id]; ok {
			for _, c := range s.cancels {
				c()
			}
			delete(r.subs, id)
		}
	}
}

// Close stops all discovery and health checking and retires every instance.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.groupTask.stop()
	for _, o := range *r.origins.Load() {
		r.stopOrigin(o)
	}
	if r.prober != nil {
		r.prober.Close()
	}
}

// background holds an origin's goroutines; only the registry, under its mutex,
// starts and stops them.
type background struct {
	discovery task
	health    task
	outlier   task
}

type task struct {
	key    string
	cancel context.CancelFunc
	done   chan struct{}
}

func startTask(key string, fn func(context.Context)) task {
	ctx, cancel := context.WithCancel(context.Background())
	t := task{key: key, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		fn(ctx)
	}()
	return t
}

// stop cancels the goroutine and waits for it to return.
func (t *task) stop() {
	if t.cancel != nil {
		t.cancel()
		<-t.done
	}
	*t = task{}
}

package origins

import (
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// policy is everything a pick or a done callback needs from the configuration,
// derived once per (re)configuration and published atomically.
type policy struct {
	cfg       OriginConfig
	lb        LB
	tau       float64 // EWMA decay, ns
	penalty   float64 // failure latency floor, ns
	seed      float64 // initial EWMA, ns
	panicFrac float64 // 0..1; 0 disables
	maxConc   int64
	retry     RetryPolicy
	hedge     hedgePolicy
	outlier   *OutlierConfig // nil: detection off
}

func newPolicy(cfg OriginConfig) *policy {
	return &policy{
		cfg:       cfg,
		lb:        cfg.LB,
		tau:       float64(cfg.Latency.Decay),
		penalty:   float64(cfg.Latency.FailurePenalty),
		seed:      float64(cfg.Latency.DefaultRTT),
		panicFrac: cfg.PanicThreshold / 100,
		maxConc:   int64(cfg.MaxConcurrency),
		retry:     newRetryPolicy(cfg.Retry),
		hedge:     newHedgePolicy(cfg.Hedge),
		outlier:   outlierPolicy(cfg.OutlierDetection),
	}
}

func outlierPolicy(c OutlierConfig) *OutlierConfig {
	if !c.Enabled {
		return nil
	}
	return &c
}

// snapshot is an immutable instance set. It is replaced, never modified.
type snapshot struct {
	list   []*Instance
	byAddr map[string]*Instance
}

// Change tells subscribers how an origin's instance set changed. Removed instances
// are retired: they get no new picks, and their Drained channel closes when their last
// in-flight attempt is done.
type Change struct {
	Origin  string
	Added   []*Instance
	Removed []*Instance
}

// Origin is a named set of instances with its policies. All methods are safe for
// concurrent use; Pick and the done callback take no origin-wide lock.
type Origin struct {
	name  string
	log   *slog.Logger
	hooks Hooks
	born  time.Time
	// clock is the origin's monotonic clock in nanoseconds: time since born,
	// replaced by tests that drive breakers and outlier ejections.
	clock func() int64
	// changed is told (without blocking) when something an origin group
	// judges changes: the instance set, a health verdict, a breaker, an
	// ejection. Nil outside a registry.
	changed func()

	pol    atomic.Pointer[policy]
	snap   atomic.Pointer[snapshot]
	budget atomic.Pointer[Budget]
	lat    *latencyWindow
	limit  *AdaptiveLimiter

	inflight atomic.Int64
	rr       atomic.Uint64
	// intN draws the power-of-two-choices candidates: rand.IntN, replaced
	// by tests that assert exact picks.
	intN func(n int) int

	// mu serialises instance-set changes, reconfiguration and subscriptions.
	mu      sync.Mutex
	subs    map[uint64]func(Change)
	nextSub uint64
	closed  bool

	readyOnce sync.Once
	ready     chan struct{}

	bg background // health checker, discovery and outlier detection goroutines

	outliers outlierDetector
}

// Hooks let the embedding program observe state changes (metrics). Each may be nil
// and must not block.
type Hooks struct {
	OnBreakerChange func(origin, instance string, from, to BreakerState)
	OnHealthChange  func(origin, instance string, healthy bool)
	// OnDiscoveryEmptyKept is called when discovery answered with no
	// instances and the last non-empty set was kept instead.
	OnDiscoveryEmptyKept func(origin string)
	// OnOutlierChange is called when outlier detection ejects an instance
	// (ejected, with the reason) or readmits it (reason "").
	OnOutlierChange func(origin, instance string, ejected bool, reason string)
	// OnFailover is called when an origin group's active origin changes.
	OnFailover func(group, from, to, reason string)
}

func newOrigin(name string, cfg OriginConfig, log *slog.Logger, hooks Hooks) *Origin {
	o := &Origin{
		name:  name,
		log:   log,
		hooks: hooks,
		born:  time.Now(),
		subs:  make(map[uint64]func(Change)),
		ready: make(chan struct{}),
		intN:  rand.IntN,
	}
	o.clock = func() int64 { return int64(time.Since(o.born)) }
	o.pol.Store(newPolicy(cfg))
	o.snap.Store(&snapshot{byAddr: map[string]*Instance{}})
	o.outliers.init(o)
	o.budget.Store(NewBudget(cfg.Retry.Budget, o.now))
	o.lat = newLatencyWindow(10*time.Second, o.now)
	o.limit = NewAdaptiveLimiter(cfg.AdaptiveLimit, time.Now)
	return o
}

// now is the origin's monotonic clock in nanoseconds.
func (o *Origin) now() int64 { return o.clock() }

// notify tells the registry's group evaluator that o's state changed.
func (o *Origin) notify() {
	if o.changed != nil {
		o.changed()
	}
}

// Name is the origin's configured name.
func (o *Origin) Name() string { return o.name }

// Config returns the configuration in force.
func (o *Origin) Config() OriginConfig { return o.pol.Load().cfg }

// ConfigRef is the configuration in force without a copy, for the request
// path: the struct is large, and a copy in the forwarder's frame made every
// serving goroutine's stack outgrow 8 KiB (an idle fasthttp worker then
// holds 16 KiB). The pointed-to configuration is immutable (a reload
// installs a new one) and must not be modified.
func (o *Origin) ConfigRef() *OriginConfig { return &o.pol.Load().cfg }

// Budget is the origin's retry budget, shared by retries and hedges.
func (o *Origin) Budget() *Budget { return o.budget.Load() }

// RetryPolicy is the retry policy in force.
func (o *Origin) RetryPolicy() RetryPolicy { return o.pol.Load().retry }

// InFlight is the number of attempts in flight to the origin.
func (o *Origin) InFlight() int64 { return o.inflight.Load() }

// Limiter is the origin's adaptive concurrency limiter.
func (o *Origin) Limiter() *AdaptiveLimiter { return o.limit }

// Concurrency reports the attempts awaiting headers against the learned
// limit and all attempts in flight against the hard cap: max_concurrency or
// the connection pool (instances x max_conns_per_instance), whichever is
// lower. The shedder reads it every tick to shed by priority before either
// cap refuses a request blindly.
func (o *Origin) Concurrency() Concurrency {
	p := o.pol.Load()
	c := Concurrency{
		Awaiting: o.limit.Awaiting(), Limit: o.limit.Limit(), InFlight: o.inflight.Load(),
		NoLoadRTT: o.limit.NoLoadRTT(), Learned: o.limit.Learned(),
		Proven: o.limit.Proven(), Refuses: o.limit.Refuses(),
	}
	if n := len(o.snap.Load().list); n > 0 && p.cfg.MaxConnsPerInstance > 0 {
		c.Cap = float64(n * p.cfg.MaxConnsPerInstance)
	}
	if p.maxConc > 0 && (c.Cap == 0 || float64(p.maxConc) < c.Cap) {
		c.Cap = float64(p.maxConc)
	}
	if !p.cfg.AdaptiveLimit.Enabled {
		c.Limit, c.Proven, c.Refuses = c.Cap, 0, false
	} else if c.Cap > 0 && c.Limit > c.Cap {
		c.Limit = c.Cap
	}
	return c
}

// Instances returns the current instance set. The slice is shared: do not modify it.
func (o *Origin) Instances() []*Instance { return o.snap.Load().list }

// Ready is closed once the origin has received its first instance set (immediately
// for static instances, after the first Consul answer for discovery).
func (o *Origin) Ready() <-chan struct{} { return o.ready }

// Subscribe calls fn with the current instances as Added, then with every change,
// until the returned cancel func is called. fn runs while the origin's instance set
// is locked: it must be quick and must not call back into SetInstances.
func (o *Origin) Subscribe(fn func(Change)) (cancel func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.nextSub
	o.nextSub++
	o.subs[id] = fn
	if cur := o.snap.Load().list; len(cur) > 0 {
		fn(Change{Origin: o.name, Added: slices.Clone(cur)})
	}
	return func() {
		o.mu.Lock()
		delete(o.subs, id)
		o.mu.Unlock()
	}
}

// SetInstances replaces the instance set. Addresses already present keep their
// Instance (in-flight count, latency estimate, breaker); new ones get fresh state;
// missing ones are retired. Duplicate addresses keep the first entry. Discovery calls
// this; tests and static configuration may too.
func (o *Origin) SetInstances(list []InstanceConfig) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.setInstancesLocked(list)
}

func (o *Origin) setInstancesLocked(list []InstanceConfig) {
	old := o.snap.Load()
	p := o.pol.Load()
	next := &snapshot{list: make([]*Instance, 0, len(list)), byAddr: make(map[string]*Instance, len(list))}
	var ch Change
	ch.Origin = o.name
	for _, ic := range list {
		if _, dup := next.byAddr[ic.Address]; dup || ic.Address == "" {
			continue
		}
		in, ok := old.byAddr[ic.Address]
		if ok {
			in.weight.Store(int32(normWeight(ic.Weight)))
		} else {
			in = newInstance(ic.Address, ic.Weight, newPeakEWMA(o.now(), p.seed), o.newBreaker(p.cfg.Breaker, ic.Address))
			in.origin = o.name
			ch.Added = append(ch.Added, in)
		}
		next.list = append(next.list, in)
		next.byAddr[ic.Address] = in
	}
	for _, in := range old.list {
		if _, kept := next.byAddr[in.addr]; !kept {
			ch.Removed = append(ch.Removed, in)
		}
	}
	o.snap.Store(next)
	// Retire after the swap so no new snapshot can hand out a retired instance.
	for _, in := range ch.Removed {
		in.retire()
	}
	o.readyOnce.Do(func() { close(o.ready) })
	if len(ch.Added) == 0 && len(ch.Removed) == 0 {
		return
	}
	o.notify()
	o.log.Info("origin instances changed", "origin", o.name,
		"added", addrs(ch.Added), "removed", addrs(ch.Removed), "total", len(next.list))
	for _, id := range slices.Sorted(maps.Keys(o.subs)) {
		o.subs[id](ch)
	}
}

func addrs(list []*Instance) []string {
	out := make([]string, len(list))
	for i, in := range list {
		out[i] = in.addr
	}
	return out
}

func (o *Origin) newBreaker(cfg BreakerConfig, addr string) *breaker {
	hook := o.hooks.OnBreakerChange
	return newBreaker(cfg, breakerEnv{
		origin: o.name, addr: addr, log: o.log, clock: o.now,
		hook: func(origin, instance string, from, to BreakerState) {
			if hook != nil {
				hook(origin, instance, from, to)
			}
			o.notify()
		},
	})
}

// reconfigure applies a validated configuration. Breakers are rebuilt (closed) only if
// their settings changed; the retry budget restarts only if its settings changed.
func (o *Origin) reconfigure(cfg OriginConfig) {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.pol.Load().cfg
	o.pol.Store(newPolicy(cfg))
	o.limit.reconfigure(cfg.AdaptiveLimit)
	if old.Breaker != cfg.Breaker {
		for _, in := range o.snap.Load().list {
			in.brk.Store(o.newBreaker(cfg.Breaker, in.addr))
		}
	}
	if old.Retry.Budget != cfg.Retry.Budget {
		o.budget.Store(NewBudget(cfg.Retry.Budget, o.now))
	}
}

// close retires every instance and stops notifying; background goroutines are
// stopped by the caller through o.bg.
func (o *Origin) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.setInstancesLocked(nil)
	o.closed = true
	o.subs = map[uint64]func(Change){}
}

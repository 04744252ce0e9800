package loadshed

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Shedder owns the scorer, the global throttler, the per-origin throttlers
// and the ticker that samples and smooths their signals. Create it with New
// and stop it with Close. All methods are safe for concurrent use.
type Shedder struct {
	cur     atomic.Pointer[compiled]
	global  Global
	origins atomic.Pointer[map[string]*Origin] // copy-on-write
	chaos   bandCounters
	// concurrency reports origins' concurrency against their learned
	// limits (nil: the concurrency signal reads 0).
	concurrency atomic.Pointer[ConcurrencySource]

	mu       sync.Mutex // serialises Update, origin creation and ticks
	lastTick time.Time

	rand func() float64
	now  func() time.Time
	// experimentEvents is told when chaos experiments start, end and stop
	// (nil: nobody listens).
	experimentEvents func(ExperimentEvent)

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// compiled is one immutable configuration generation.
type compiled struct {
	cfg          Config
	scorer       *Scorer
	chaosTrusted trustedSet
	origins      map[string]*OriginConfig // effective config of overridden origins
	experiments  []*experiment
}

// Option adjusts a Shedder at construction.
type Option func(*options)

type options struct {
	rand             func() float64
	cpu              CPUSource
	sched            SchedLatencySource
	manual           bool
	now              func() time.Time
	experimentEvents func(ExperimentEvent)
	runq             RunQueueSource
}

// WithRand replaces the random source used for chaos sampling and
// Retry-After jitter. fn must return values in [0, 1) and be safe for
// concurrent use.
func WithRand(fn func() float64) Option { return func(o *options) { o.rand = fn } }

// WithCPUSource replaces the CPU accounting source chosen from config.
func WithCPUSource(src CPUSource) Option { return func(o *options) { o.cpu = src } }

// WithSchedLatencySource replaces the Go runtime as the source of the scheduling-latency
// histogram (tests).
func WithSchedLatencySource(src SchedLatencySource) Option {
	return func(o *options) { o.sched = src }
}

// WithRunQueueSource replaces the Go runtime as the source of the runnable goroutines per
// core (tests).
func WithRunQueueSource(src RunQueueSource) Option {
	return func(o *options) { o.runq = src }
}

// withManualTicks leaves the ticker goroutine off so tests drive tick with
// their own clock.
func withManualTicks(now func() time.Time) Option {
	return func(o *options) { o.manual, o.now = true, now }
}

// New validates cfg and starts the background ticker. Call Close to stop it.
func New(cfg Config, opts ...Option) (*Shedder, error) {
	o := options{rand: rand.Float64, now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	start := o.now()
	c, err := compile(cfg, nil, start)
	if err != nil {
		return nil, err
	}
	s := &Shedder{rand: o.rand, now: o.now, experimentEvents: o.experimentEvents, stop: make(chan struct{}), done: make(chan struct{})}
	s.cur.Store(c)
	empty := map[string]*Origin{}
	s.origins.Store(&empty)
	s.global.init(ScopeGlobal, "", s, cfg.Global.DryRun)
	s.global.starved = s.global.starvedLevel
	s.global.sched.src = o.sched
	s.global.runq = o.runq
	if s.global.runq == nil {
		s.global.runq = runtimeRunQueue
	}
	if o.cpu != nil {
		s.global.cpu.src, s.global.cpu.fixed = o.cpu, true
	}
	s.global.apply(&c.cfg.Global)
	s.lastTick = start
	s.announceExperiments(nil, c.experiments, start)
	if o.manual {
		close(s.done)
	} else {
		go s.run()
	}
	return s, nil
}

func compile(cfg Config, prevExperiments []*experiment, now time.Time) (*compiled, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc, err := NewScorer(cfg.Scoring)
	if err != nil {
		return nil, err
	}
	ct, err := newTrustedSet(cfg.Chaos.TrustedCIDRs, cfg.Chaos.TrustedIdentities)
	if err != nil {
		return nil, fmt.Errorf("chaos.%w", err)
	}
	c := &compiled{cfg: cfg, scorer: sc, chaosTrusted: ct, origins: make(map[string]*OriginConfig, len(cfg.Origins)),
		experiments: compileExperiments(cfg.Chaos.Experiments, prevExperiments, now)}
	for name := range cfg.Origins {
		oc := cfg.OriginConfigFor(name)
		c.origins[name] = &oc
	}
	return c, nil
}

// Close stops the ticker and waits for it to exit. It is idempotent.
// Throttlers keep answering Decide with their last cutoff afterwards.
func (s *Shedder) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Update validates cfg and applies it to the scorer and every existing
// throttler at once, keeping their counters and smoothed signals. Cutoffs
// are recomputed immediately under the new thresholds and k (hysteresis is
// bypassed for this one step). On error nothing changes.
func (s *Shedder) Update(cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	prev := s.cur.Load()
	c, err := compile(cfg, prev.experiments, now)
	if err != nil {
		return err
	}
	s.cur.Store(c)
	s.announceExperiments(prev.experiments, c.experiments, now)
	s.global.apply(&c.cfg.Global)
	for name, o := range *s.origins.Load() {
		o.apply(c.originConfig(name), now)
	}
	return nil
}

// Config returns the configuration in force.
func (s *Shedder) Config() Config { return s.cur.Load().cfg }

func (c *compiled) originConfig(name string) *OriginConfig {
	if oc, ok := c.origins[name]; ok {
		return oc
	}
	return &c.cfg.Origin
}

// SetConcurrencySource connects the origin scopes' concurrency signal to
// the origins' adaptive limits. fn runs on the ticker and must be quick and
// safe for concurrent use; nil disconnects.
func (s *Shedder) SetConcurrencySource(fn ConcurrencySource) {
	if fn == nil {
		s.concurrency.Store(nil)
		return
	}
	s.concurrency.Store(&fn)
}

// Score returns the priority score of r under the current rules.
func (s *Shedder) Score(r Request) int { return s.cur.Load().scorer.Score(r) }

// Global returns the global throttler.
func (s *Shedder) Global() *Global { return &s.global }

// DecideGlobal is the inbound admission check: chaos first (a deliberate
// failure for the configured score range), then the global cutoff.
func (s *Shedder) DecideGlobal(r Request, score int) Decision {
	c := s.cur.Load()
	if s.chaosHit(c, r, score) {
		s.global.decided.inc(score)
		s.chaos.inc(score)
		st := s.global.state.Load()
		return Decision{
			Shed: true, Scope: ScopeChaos, Score: score,
			Cutoff: st.cutoff, Overload: st.overload, RetryAfter: s.retryAfter(),
		}
	}
	return s.global.Decide(score)
}

func (s *Shedder) chaosHit(c *compiled, r Request, score int) bool {
	ch := &c.cfg.Chaos
	if !ch.Enabled || score < ch.MinScore || score > ch.MaxScore {
		return false
	}
	if ch.Header != "" {
		if v := r.Header(ch.Header); v != "" && (ch.HeaderValue == "" || v == ch.HeaderValue) &&
			c.chaosTrusted.Trusts(r.Identity()) {
			return true
		}
	}
	return ch.Fraction > 0 && s.rand() < ch.Fraction
}

// Origin returns the throttler for the named origin, creating it on first
// use. The lookup is a lock-free map read; creation copies the map, so
// origin names should come from configuration, not from requests.
func (s *Shedder) Origin(name string) *Origin {
	if o, ok := (*s.origins.Load())[name]; ok {
		return o
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.origins.Load()
	if o, ok := old[name]; ok {
		return o
	}
	o := &Origin{}
	c := s.cur.Load()
	oc := c.originConfig(name)
	o.init(ScopeOrigin, name, s, oc.DryRun)
	o.apply(oc, s.now())
	next := make(map[string]*Origin, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = o
	s.origins.Store(&next)
	return o
}

// RetainOrigins drops the throttlers of origins not in names (e.g. after a
// reload removed them). A caller still holding a dropped *Origin keeps a
// working but unobserved throttler.
func (s *Shedder) RetainOrigins(names []string) {
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.origins.Load()
	next := make(map[string]*Origin, len(old))
	for k, v := range old {
		if keep[k] {
			next[k] = v
		}
	}
	s.origins.Store(&next)
}

// retryAfter draws Base + U[0, Jitter) and rounds up to whole seconds, at
// least 1.
func (s *Shedder) retryAfter() int {
	ra := s.cur.Load().cfg.RetryAfter
	d := ra.Base.Seconds() + s.rand()*ra.Jitter.Seconds()
	return max(1, int(math.Ceil(d)))
}

func (s *Shedder) run() {
	defer close(s.done)
	t := time.NewTimer(s.cur.Load().cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.tick(s.now())
			t.Reset(s.cur.Load().cfg.Interval)
		}
	}
}

// tick samples, smooths and republishes every scope. dt is the real time
// since the previous tick, so a late tick smooths proportionally more.
func (s *Shedder) tick(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.lastTick
	dt := now.Sub(last)
	if dt <= 0 {
		return
	}
	s.lastTick = now
	s.expireExperiments(last, now)
	s.global.tick(now, dt)
	for _, o := range *s.origins.Load() {
		o.tick(now, dt)
	}
}

// Snapshot is the observable state of every scope, for metrics and admin.
type Snapshot struct {
	Global  ScopeSnapshot   `json:"global"`
	Origins []ScopeSnapshot `json:"origins"` // sorted by name
	// Chaos counts deliberate sheds per score band.
	Chaos BandCounts `json:"chaos"`
	// Experiments are the configured chaos experiments and whether each
	// is running.
	Experiments []ExperimentState `json:"experiments"`
	// CPUSource names the CPU accounting in use; CPUError is its last
	// sampling error, if any ("" when healthy).
	CPUSource string `json:"cpu_source"`
	CPUError  string `json:"cpu_error,omitempty"`
}

// Snapshot copies the current state. It is meant for scrapes and admin
// pages, not the request path.
func (s *Shedder) Snapshot() Snapshot {
	s.mu.Lock()
	cpuName, cpuErr := "", ""
	if src := s.global.cpu.src; src != nil {
		cpuName = src.Name()
	}
	if err := s.global.cpu.err; err != nil {
		cpuErr = err.Error()
	}
	s.mu.Unlock()
	snap := Snapshot{Global: s.global.snapshot(), Chaos: s.chaos.load(), CPUSource: cpuName, CPUError: cpuErr,
		Experiments: s.experimentStates(s.now())}
	snap.Global.Name = "global"
	snap.Global.Inflight = s.global.inflight.Load()
	snap.Global.K = s.global.cfg.Load().K
	snap.Global.Starvation = s.global.starvationSnapshot()
	origins := *s.origins.Load()
	snap.Origins = make([]ScopeSnapshot, 0, len(origins))
	for _, o := range origins {
		os := o.snapshot()
		os.Inflight = o.inflight.Load()
		os.K = o.cfg.Load().K
		os.Limit = o.limitSnapshot()
		snap.Origins = append(snap.Origins, os)
	}
	sort.Slice(snap.Origins, func(i, j int) bool { return snap.Origins[i].Name < snap.Origins[j].Name })
	return snap
}

package ratelimit

import (
	"cmp"
	"hash/maphash"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// numShards spreads a policy's buckets over independently locked maps so
// concurrent requests for different keys rarely contend.
const numShards = 64

// DefaultSweepInterval is how often the janitor looks for idle buckets.
const DefaultSweepInterval = 10 * time.Second

// Options configure a Limiters service.
type Options struct {
	// Now is the clock; nil means time.Now. Tests inject a fake clock to
	// drive buckets deterministically.
	Now func() time.Time
	// SweepInterval is how often the janitor drops idle buckets; 0 means
	// DefaultSweepInterval, negative disables the janitor (call Sweep).
	SweepInterval time.Duration
	// OnReject, if set, is called once for each rejected request with the
	// policy's name (e.g. to count floodgate_rate_limited_total). It runs
	// on the request path and must be cheap.
	OnReject func(policy string)
	// Logger receives the Redis backend's failures and recoveries; nil
	// discards them.
	Logger *slog.Logger
}

// Limiters holds the buckets of every policy. It is long-lived: the gateway
// creates one at start-up and calls Update on each config reload, so
// clients keep their remaining tokens across reloads. Safe for concurrent
// use.
type Limiters struct {
	now      func() time.Time
	onReject func(string)
	seed     maphash.Seed

	// policies is replaced wholesale by Update; the request path reads it
	// with one atomic load.
	policies atomic.Pointer[map[string]*Buckets]
	// concurrency holds the concurrent-request tables, replaced like
	// policies.
	concurrency atomic.Pointer[map[string]*ConcurrencyTable]
	// redis is the shared Redis connection, nil when none is configured.
	redis    atomic.Pointer[redisBackend]
	redisCfg RedisConfig // under updateMu
	closed   bool        // under updateMu: Close ran, connect no more
	logger   *slog.Logger
	// updateMu serialises Configure and Sweep, which both walk the buckets.
	updateMu sync.Mutex

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// spec is a policy's effective settings; replaced atomically on Update.
type spec struct {
	Policy
	key KeySpec
	// gcraArgs are the GCRA script's arguments after the key (interval,
	// burst, idle), formatted once per configuration instead of per
	// decision.
	gcraArgs [3]any
}

// Buckets is one policy's table of per-key buckets.
type Buckets struct {
	l        *Limiters
	name     string
	spec     atomic.Pointer[spec]
	shards   [numShards]shard
	count    atomic.Int64
	overflow *rate.Limiter

	admitted       atomic.Uint64
	rejected       atomic.Uint64
	overflowed     atomic.Uint64
	overflowReject atomic.Uint64
	// fallbacks counts decisions a redis policy made locally because
	// Redis failed or its breaker was open.
	fallbacks atomic.Uint64
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*entry
	// peak is len(m)'s high-water mark since m was allocated: Go maps
	// never shrink, so Sweep rebuilds a map that has emptied out.
	peak int
}

// shrinkMin is the smallest peak worth rebuilding a shard's map for.
const shrinkMin = 256

type entry struct {
	lim *rate.Limiter
	// seen is the last use in Unix nanoseconds of the Limiters' clock.
	seen atomic.Int64
}

// New returns a Limiters with no policies and starts its janitor unless
// disabled. Call Close to stop the janitor.
func New(opts Options) *Limiters {
	l := &Limiters{
		now:      opts.Now,
		onReject: opts.OnReject,
		logger:   opts.Logger,
		seed:     maphash.MakeSeed(),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	empty := map[string]*Buckets{}
	l.policies.Store(&empty)
	emptyConc := map[string]*ConcurrencyTable{}
	l.concurrency.Store(&emptyConc)
	interval := opts.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval < 0 {
		close(l.done)
		return l
	}
	go l.janitor(interval)
	return l
}

func (l *Limiters) janitor(interval time.Duration) {
	defer close(l.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Sweep()
		}
	}
}

// Close stops the janitor and the Redis connection and waits for them to
// exit. Local buckets stay usable; redis policies decide locally from now
// on.
func (l *Limiters) Close() {
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	l.updateMu.Lock()
	defer l.updateMu.Unlock()
	l.closed = true
	if rb := l.redis.Swap(nil); rb != nil {
		rb.close()
	}
}

// Update installs a new set of rate-limit policies, keeping the
// concurrency policies and the Redis connection. See Configure.
func (l *Limiters) Update(policies []Policy) error {
	l.updateMu.Lock()
	cfg := Config{Policies: policies, Redis: l.redisCfg}
	for _, t := range *l.concurrency.Load() {
		cfg.Concurrency = append(cfg.Concurrency, t.spec.Load().ConcurrencyPolicy)
	}
	l.updateMu.Unlock()
	return l.Configure(cfg)
}

// Configure installs a whole rate-limit config: Redis connection,
// rate-limit and concurrency policies. It validates first and changes
// nothing when cfg is invalid.
//
// A policy that keeps its name and key keeps its buckets: a changed rate or
// burst is applied to each bucket from now on, without refilling or
// draining it. A policy whose key changes starts with fresh buckets (old
// keys mean nothing under the new key), and removed policies are dropped.
// Concurrency policies keep their in-flight counts the same way. A changed
// Redis connection replaces the client; requests deciding on the old one
// at that moment fall back to local limits.
func (l *Limiters) Configure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.updateMu.Lock()
	defer l.updateMu.Unlock()
	l.configureRedis(cfg.Redis)
	l.configureConcurrency(cfg.Concurrency)
	policies := cfg.Policies
	now := l.now()
	old := *l.policies.Load()
	next := make(map[string]*Buckets, len(policies))
	for _, p := range policies {
		p = p.WithDefaults()
		sp := &spec{Policy: p, key: compileKey(p.Key, p.IPv6Prefix)}
		sp.gcraArgs = gcraArgs(p)
		ps, ok := old[p.Name]
		if !ok || !ps.spec.Load().key.equal(sp.key) {
			next[p.Name] = newBuckets(l, sp)
			continue
		}
		ps.reconfigure(sp, now)
		next[p.Name] = ps
	}
	l.policies.Store(&next)
	return nil
}

// configureRedis connects to a new Redis when its config changed; the
// client connects lazily, on the first decision.
func (l *Limiters) configureRedis(cfg RedisConfig) {
	if cfg.equal(l.redisCfg) && (l.redis.Load() != nil) == (len(cfg.Addrs) > 0 && !l.closed) {
		return
	}
	l.redisCfg = cfg
	var next *redisBackend
	if len(cfg.Addrs) > 0 && !l.closed {
		next = newRedisBackend(cfg, l.logger.With("component", "ratelimit.redis"))
	}
	if prev := l.redis.Swap(next); prev != nil {
		prev.close()
	}
}

func newBuckets(l *Limiters, sp *spec) *Buckets {
	ps := &Buckets{
		l:        l,
		name:     sp.Name,
		overflow: rate.NewLimiter(rate.Limit(sp.OverflowRate), sp.OverflowBurst),
	}
	for i := range ps.shards {
		ps.shards[i].m = map[string]*entry{}
	}
	ps.spec.Store(sp)
	return ps
}

// reconfigure publishes sp and then retunes every existing bucket. The
// spec is stored first and new buckets read it under their shard's lock,
// so a bucket created concurrently is either retuned here or born with
// the new settings.
func (b *Buckets) reconfigure(sp *spec, now time.Time) {
	prev := b.spec.Swap(sp)
	if prev.OverflowRate != sp.OverflowRate {
		b.overflow.SetLimitAt(now, rate.Limit(sp.OverflowRate))
	}
	if prev.OverflowBurst != sp.OverflowBurst {
		b.overflow.SetBurstAt(now, sp.OverflowBurst)
	}
	if prev.Rate == sp.Rate && prev.Burst == sp.Burst {
		return
	}
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			if prev.Rate != sp.Rate {
				e.lim.SetLimitAt(now, rate.Limit(sp.Rate))
			}
			if prev.Burst != sp.Burst {
				e.lim.SetBurstAt(now, sp.Burst)
			}
		}
		sh.mu.Unlock()
	}
}

// Has reports whether a policy named name is installed.
func (l *Limiters) Has(name string) bool {
	_, ok := (*l.policies.Load())[name]
	return ok
}

// Names lists the installed policies, sorted.
func (l *Limiters) Names() []string { return sortedNames(*l.policies.Load()) }

// sortedNames lists a policy map's names, sorted (empty, not nil, when
// there are none).
func sortedNames[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Decision is the outcome of one Allow call and the quota to report.
type Decision struct {
	Policy  string
	Allowed bool
	// Limit is the bucket size (the burst): the most requests a rested
	// client can send at once.
	Limit int
	// Remaining is the whole tokens left after this request.
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter is how long until one token is available; zero when
	// Allowed.
	RetryAfter time.Duration
	// Overflow says the key was not tracked because the policy's table was
	// full, so the request was charged to the shared overflow bucket.
	Overflow bool
	// Backend is where the decision was made: local or redis.
	Backend string
	// Fallback says a redis policy decided locally because Redis failed
	// or its breaker was open.
	Fallback bool
}

// Buckets returns the bucket table of the installed policy named name, or
// nil when there is none (a reload removed it while a request that started
// on the old config was in flight). Build the key with the table's own
// KeySpec: a reload that changes a policy's key installs a new table, so
// a table and its spec always agree.
func (l *Limiters) Buckets(name string) *Buckets {
	return (*l.policies.Load())[name]
}

// Allow spends one token of key's bucket under policy; key is any byte
// string identifying the client. ok is false when no such policy is
// installed.
func (l *Limiters) Allow(policy string, key []byte) (d Decision, ok bool) {
	b := l.Buckets(policy)
	if b == nil {
		return Decision{Policy: policy, Allowed: true}, false
	}
	return b.Allow(key), true
}

// KeySpec returns what identifies a bucket in b.
func (b *Buckets) KeySpec() *KeySpec { return &b.spec.Load().key }

// Allow spends one token of key's bucket: in Redis for a redis policy,
// falling back to the local bucket when Redis fails; locally otherwise.
func (b *Buckets) Allow(key []byte) Decision {
	sp := b.spec.Load()
	if sp.Backend != BackendRedis {
		return b.allowLocal(key, false)
	}
	if rb := b.l.redis.Load(); rb != nil {
		if d, err := rb.allow(b.name, sp, key); err == nil {
			b.record(d, false)
			return d
		}
	}
	b.fallbacks.Add(1)
	return b.allowLocal(key, true)
}

// record records a decision in the policy's counters.
func (b *Buckets) record(d Decision, overflow bool) {
	if d.Allowed {
		b.admitted.Add(1)
	} else {
		b.rejected.Add(1)
		if overflow {
			b.overflowReject.Add(1)
		}
		if b.l.onReject != nil {
			b.l.onReject(b.name)
		}
	}
	if overflow {
		b.overflowed.Add(1)
	}
}

// allowLocal decides with this process's bucket for key.
func (b *Buckets) allowLocal(key []byte, fallback bool) Decision {
	policy := b.name
	now := b.l.now()
	lim, sp, overflow := b.bucket(key, now)
	r, burst := sp.Rate, sp.Burst
	if overflow {
		r, burst = sp.OverflowRate, sp.OverflowBurst
	}
	allowed := lim.AllowN(now, 1)
	tokens := lim.TokensAt(now)
	d := Decision{
		Policy:    policy,
		Allowed:   allowed,
		Limit:     burst,
		Remaining: max(0, int(math.Floor(tokens))),
		Reset:     secondsToDuration((float64(burst) - tokens) / r),
		Overflow:  overflow,
		Backend:   BackendLocal,
		Fallback:  fallback,
	}
	if !allowed {
		d.RetryAfter = secondsToDuration((1 - tokens) / r)
	}
	b.record(d, overflow)
	return d
}

func secondsToDuration(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}

// bucket finds or creates key's limiter. When the policy already tracks
// MaxKeys buckets a new key gets the shared overflow bucket instead: memory
// stays bounded, and, unlike evicting the least recently used bucket, a
// flood of fresh keys cannot push an active client's drained bucket out and
// hand it a full one.
func (b *Buckets) bucket(key []byte, now time.Time) (*rate.Limiter, *spec, bool) {
	sh := &b.shards[maphash.Bytes(b.l.seed, key)%numShards]
	nanos := now.UnixNano()
	sh.mu.RLock()
	e := sh.m[string(key)]
	if e != nil {
		e.seen.Store(nanos)
	}
	sh.mu.RUnlock()
	if e != nil {
		return e.lim, b.spec.Load(), false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sp := b.spec.Load()
	if e = sh.m[string(key)]; e == nil {
		if b.count.Add(1) > int64(sp.MaxKeys) {
			b.count.Add(-1)
			return b.overflow, sp, true
		}
		e = &entry{lim: rate.NewLimiter(rate.Limit(sp.Rate), sp.Burst)}
		sh.m[string(key)] = e
		sh.peak = max(sh.peak, len(sh.m))
	}
	e.seen.Store(nanos)
	return e.lim, sp, false
}

// Sweep drops buckets that have been idle for their policy's IdleTimeout
// and have refilled completely, which loses no state: a new bucket for
// the same key starts full. It returns how many were dropped. The janitor
// calls it periodically; tests call it with an injected clock.
func (l *Limiters) Sweep() int {
	l.updateMu.Lock()
	defer l.updateMu.Unlock()
	now := l.now()
	nowNanos := now.UnixNano()
	dropped := 0
	for _, ps := range *l.policies.Load() {
		sp := ps.spec.Load()
		idle := int64(sp.IdleTimeout)
		full := float64(sp.Burst)
		for i := range ps.shards {
			sh := &ps.shards[i]
			sh.mu.Lock()
			for k, e := range sh.m {
				if nowNanos-e.seen.Load() >= idle && e.lim.TokensAt(now) >= full {
					delete(sh.m, k)
					ps.count.Add(-1)
					dropped++
				}
			}
			if sh.peak >= shrinkMin && len(sh.m) < sh.peak/4 {
				// Not maps.Clone: it keeps the old capacity.
				m := make(map[string]*entry, len(sh.m))
				for k, e := range sh.m {
					m[k] = e
				}
				sh.m = m
				sh.peak = len(sh.m)
			}
			sh.mu.Unlock()
		}
	}
	return dropped
}

// PolicyStats is one policy's state, for the admin API and tests.
type PolicyStats struct {
	Name    string  `json:"name"`
	Backend string  `json:"backend"`
	Rate    float64 `json:"rate"`
	Burst   int     `json:"burst"`
	// Keys is the number of buckets tracked now; MaxKeys its cap.
	Keys    int64 `json:"keys"`
	MaxKeys int   `json:"max_keys"`
	// Counters since the policy was created.
	Admitted         uint64 `json:"admitted"`
	Rejected         uint64 `json:"rejected"`
	Overflowed       uint64 `json:"overflowed"`
	OverflowRejected uint64 `json:"overflow_rejected"`
	// Fallbacks are decisions of a redis policy made locally.
	Fallbacks uint64 `json:"fallbacks"`
}

// Stats returns every policy's state, sorted by name.
func (l *Limiters) Stats() []PolicyStats {
	m := *l.policies.Load()
	out := make([]PolicyStats, 0, len(m))
	for _, ps := range m {
		sp := ps.spec.Load()
		out = append(out, PolicyStats{
			Name: ps.name, Backend: sp.Backend, Rate: sp.Rate, Burst: sp.Burst,
			Keys: ps.count.Load(), MaxKeys: sp.MaxKeys,
			Admitted: ps.admitted.Load(), Rejected: ps.rejected.Load(),
			Overflowed: ps.overflowed.Load(), OverflowRejected: ps.overflowReject.Load(),
			Fallbacks: ps.fallbacks.Load(),
		})
	}
	slices.SortFunc(out, func(a, b PolicyStats) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// RedisStats is the Redis connection's state, for metrics and the admin
// API.
type RedisStats struct {
	// Configured says a Redis connection exists.
	Configured bool `json:"configured"`
	// Breaker is the breaker's state; Errors counts failed calls.
	Breaker BreakerState `json:"breaker"`
	Errors  uint64       `json:"errors"`
}

// RedisStats reports the Redis connection.
func (l *Limiters) RedisStats() RedisStats {
	rb := l.redis.Load()
	if rb == nil {
		return RedisStats{}
	}
	return RedisStats{Configured: true, Breaker: rb.State(), Errors: rb.errs.Load()}
}

// Snapshot is every policy's and the Redis connection's state, for the
// admin API (/admin/ratelimit).
type Snapshot struct {
	Policies    []PolicyStats      `json:"policies"`
	Concurrency []ConcurrencyStats `json:"concurrency"`
	Redis       RedisStats         `json:"redis"`
}

// Snapshot reports the current state.
func (l *Limiters) Snapshot() Snapshot {
	return Snapshot{Policies: l.Stats(), Concurrency: l.ConcurrencyStats(), Redis: l.RedisStats()}
}

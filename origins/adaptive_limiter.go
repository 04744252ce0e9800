package origins

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

// AdaptiveLimitConfig tunes an origin's learned concurrency limit. The
// defaults work for origins from tens to thousands of requests per second;
// an SRE rarely needs to touch them (loadshed/SHEDDING.md says when).
type AdaptiveLimitConfig struct {
	// Enabled learns the limit; when false Limit reports the hard cap only.
	Enabled bool `mapstructure:"enabled"`
	// Initial is the limit before anything was learned; Min and Max bound it.
	Initial int `mapstructure:"initial"`
	Min     int `mapstructure:"min"`
	Max     int `mapstructure:"max"`
	// Window is how often the limit is updated; a window closes only once
	// it holds MinSamples samples, so a quiet origin's limit moves slowly
	// and never on one or two slow requests.
	Window     time.Duration `mapstructure:"window"`
	MinSamples int           `mapstructure:"min_samples"`
	// Tolerance is how much slower than its no-load latency the origin may
	// answer before the limit shrinks (1.5 = 50 % slower).
	Tolerance float64 `mapstructure:"tolerance"`
	// Slack is added to the tolerated latency: timing noise below it never
	// reads as queueing.
	Slack time.Duration `mapstructure:"slack"`
	// Smoothing is the share of the computed change applied per window.
	Smoothing float64 `mapstructure:"smoothing"`
	// Backoff multiplies the limit after a window in which at least
	// DropRatio of the samples were dropped (503, 429, timeout, reset).
	Backoff   float64 `mapstructure:"backoff"`
	DropRatio float64 `mapstructure:"drop_ratio"`
	// NoLoadDrift is the time constant with which the learned no-load
	// latency follows a slower origin upward.
	NoLoadDrift time.Duration `mapstructure:"no_load_drift"`
	// ServingBound bounds a saturated origin's limit by the concurrency it
	// serves (Little's law), so its own first-come-first-served queue
	// stays short and critical requests wait in the gateway's priority
	// queue instead. It is used only where its headroom covers the
	// gateway's own delay (GradientLimit.servingDelayCovered: in effect
	// origins whose no-load latency is long next to it, 10 slots x 20 ms
	// and slower); see GradientLimit.updateServing and
	// loadshed/SHEDDING.md.
	ServingBound bool `mapstructure:"serving_bound"`
}

// DefaultAdaptiveLimitConfig returns the shipped defaults.
func DefaultAdaptiveLimitConfig() AdaptiveLimitConfig {
	return AdaptiveLimitConfig{
		Enabled: true, Initial: 50, Min: 4, Max: 10000,
		Window: 100 * time.Millisecond, MinSamples: 10,
		Tolerance: 1.25, Slack: time.Millisecond, Smoothing: 0.2,
		Backoff: 0.9, DropRatio: 0.01, NoLoadDrift: time.Minute,
		ServingBound: true,
	}
}

func (c AdaptiveLimitConfig) validate(fe *decode.Errors, p string) {
	if !c.Enabled {
		return
	}
	if c.Min < 1 {
		fe.Add(p+".min", "must be at least 1, got %d", c.Min)
	}
	if c.Max < c.Min {
		fe.Add(p+".max", "must be at least min (%d), got %d", c.Min, c.Max)
	}
	if c.Initial < c.Min || c.Initial > c.Max {
		fe.Add(p+".initial", "must be between min and max, got %d", c.Initial)
	}
	if c.Window < time.Millisecond || c.Window > time.Minute {
		fe.Add(p+".window", "must be between 1ms and 1m, got %s", c.Window)
	}
	if c.MinSamples < 1 {
		fe.Add(p+".min_samples", "must be at least 1, got %d", c.MinSamples)
	}
	if c.Tolerance < 1 || c.Tolerance > 10 {
		fe.Add(p+".tolerance", "must be between 1 and 10, got %v", c.Tolerance)
	}
	if c.Slack < 0 || c.Slack > time.Second {
		fe.Add(p+".slack", "must be between 0 and 1s, got %s", c.Slack)
	}
	if !(c.Smoothing > 0 && c.Smoothing <= 1) {
		fe.Add(p+".smoothing", "must be in (0, 1], got %v", c.Smoothing)
	}
	if !(c.Backoff > 0 && c.Backoff < 1) {
		fe.Add(p+".backoff", "must be in (0, 1), got %v", c.Backoff)
	}
	if !(c.DropRatio > 0 && c.DropRatio <= 1) {
		fe.Add(p+".drop_ratio", "must be in (0, 1], got %v", c.DropRatio)
	}
	if c.NoLoadDrift < 0 {
		fe.Add(p+".no_load_drift", "must not be negative")
	}
}

// AdaptiveLimiter counts an origin's attempts awaiting response headers and
// feeds their times to headers, window by window, to a LimitAlgorithm. It
// enforces nothing itself: the origin's load-shedding scope reads
// Concurrency and sheds by priority before the origin, the connection pool
// or max_concurrency would refuse blindly.
type AdaptiveLimiter struct {
	clock func() time.Time

	awaiting atomic.Int64
	peak     atomic.Int64 // highest awaiting count in the open window

	mu      sync.Mutex
	alg     LimitAlgorithm
	cfg     AdaptiveLimitConfig
	opened  time.Time
	n, drop int
	sumRTT  time.Duration
	limit   atomic.Uint64 // float64 bits, for lock-free reads
	updates atomic.Int64
	// proven is the most attempts a window had awaiting headers at once
	// without the origin refusing any of them (0: not known yet); see
	// Proven. refusedAt is when the origin last refused at a concurrency
	// not yet proven, or a window last closed on refusals (Unix
	// nanoseconds; 0: never).
	proven    atomic.Int64
	refusedAt atomic.Int64
}

// refuserMemory is how long after its last refusals an origin is treated
// as one that refuses past its capacity (see Proven).
const refuserMemory = 10 * time.Minute

// NewAdaptiveLimiter starts a limiter with the gradient algorithm. clock is
// injectable so tests are deterministic.
func NewAdaptiveLimiter(cfg AdaptiveLimitConfig, clock func() time.Time) *AdaptiveLimiter {
	l := &AdaptiveLimiter{clock: clock}
	l.reconfigure(cfg)
	return l
}

// WithAlgorithm replaces the limit algorithm (tests, experiments).
func (l *AdaptiveLimiter) WithAlgorithm(alg LimitAlgorithm) *AdaptiveLimiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.alg = alg
	l.storeLimit(alg.Limit())
	return l
}

func (l *AdaptiveLimiter) reconfigure(cfg AdaptiveLimitConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.alg != nil && l.cfg == cfg {
		return
	}
	// A changed configuration relearns from its initial limit.
	l.cfg = cfg
	l.alg = NewGradientLimit(cfg)
	l.opened = l.clock()
	l.n, l.drop, l.sumRTT = 0, 0, 0
	l.updates.Store(0)
	l.proven.Store(0)
	l.refusedAt.Store(0)
	l.storeLimit(l.alg.Limit())
}

func (l *AdaptiveLimiter) storeLimit(v float64) { l.limit.Store(math.Float64bits(v)) }

// Start counts an attempt as awaiting headers. Pair it with exactly one
// Observe.
func (l *AdaptiveLimiter) Start() {
	n := l.awaiting.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
}

// Observe ends an attempt's wait for headers. canceled attempts (given up by
// us, or never sent) only leave the count; others are samples.
func (l *AdaptiveLimiter) Observe(rtt time.Duration, dropped, canceled bool) {
	level := l.awaiting.Add(-1) + 1 // awaiting headers when it was answered, itself included
	if canceled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.cfg.Enabled {
		return
	}
	now := l.clock()
	l.n++
	if dropped {
		l.drop++
		// A refusal at a concurrency not yet proven is the origin showing
		// where its capacity ends: it counts as refusing from now on, not
		// only once the window carrying the refusal closes (ten answers
		// later), so critical requests waiting for a tested slot wait
		// longer from this answer on (see Refuses).
		if p := l.proven.Load(); p == 0 || level > p {
			l.refusedAt.Store(now.UnixNano())
		}
	} else {
		l.sumRTT += rtt
	}
	// Refusals close a window early: they are the origin saying it is
	// past capacity, and waiting out the window at a spike's onset let a
	// refusing origin turn away every request past its slots for the
	// whole window (38 refusals in the first 100 ms in the refusing-origin
	// experiment).
	refusing := l.drop > 0 && float64(l.drop) >= l.cfg.DropRatio*float64(l.n)
	if l.n < l.cfg.MinSamples || (now.Sub(l.opened) < l.cfg.Window && !refusing) {
		return
	}
	var mean time.Duration
	if ok := l.n - l.drop; ok > 0 {
		mean = l.sumRTT / time.Duration(ok)
	}
	peak := l.peak.Swap(l.awaiting.Load())
	l.prove(peak, refusing)
	l.storeLimit(l.alg.Update(now, mean, l.n, l.drop, peak))
	l.updates.Add(1)
	l.opened = now
	l.n, l.drop, l.sumRTT = 0, 0, 0
}

// prove folds a closed window into Proven: a window with no drop proves
// its peak concurrency; one the origin refused in lowers Proven under
// its peak, so an origin whose capacity fell is not trusted at the old
// level. A window with a drop or two under drop_ratio (an application's
// occasional 503) proves nothing either way.
func (l *AdaptiveLimiter) prove(peak int64, refusing bool) {
	switch p := l.proven.Load(); {
	case l.drop == 0 && peak > p:
		l.proven.Store(peak)
	case refusing && (p == 0 || peak-1 < p):
		l.proven.Store(max(peak-1, 1))
	}
	if refusing {
		l.refusedAt.Store(l.clock().UnixNano())
	}
}

// Proven is the most attempts the origin has had awaiting headers at once
// in a window without refusing any (0: not known). Concurrency past it is
// untested: the origin's load-shedding scope lets only its less critical
// requests take it, so when the origin turns out to refuse there, its
// refusals fall on them (loadshed/SHEDDING.md, "Probing with expendable
// requests").
func (l *AdaptiveLimiter) Proven() int64 { return l.proven.Load() }

// Refuses tells whether the origin refused past its capacity (an answer
// refused at a concurrency not yet proven, or a window closed on
// refusals) within refuserMemory: one that queues instead shows its
// capacity in its latency, so the scope holds critical requests off its
// untested concurrency only briefly.
func (l *AdaptiveLimiter) Refuses() bool {
	at := l.refusedAt.Load()
	return at != 0 && l.clock().Sub(time.Unix(0, at)) <= refuserMemory
}

// Awaiting is the number of attempts sent and not yet answered with headers.
func (l *AdaptiveLimiter) Awaiting() int64 { return l.awaiting.Load() }

// Limit is the learned limit (the initial one until learned).
func (l *AdaptiveLimiter) Limit() float64 { return math.Float64frombits(l.limit.Load()) }

// NoLoadRTT is the learned no-load time to headers.
func (l *AdaptiveLimiter) NoLoadRTT() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alg.NoLoadRTT()
}

// droppedOutcome tells which results mean "the origin is past its capacity".
func droppedOutcome(r Result) bool {
	switch r.Outcome {
	case OutcomeTimeout, OutcomeReset:
		return true
	}
	return r.Status == 503 || r.Status == 429
}

// Concurrency is what an origin's load-shedding scope needs: attempts
// awaiting headers against the learned limit, and all attempts in flight
// (streaming bodies included) against the hard cap that the connection pool
// and max_concurrency impose. Cap is 0 when nothing caps the origin.
type Concurrency struct {
	Awaiting  int64
	Limit     float64
	InFlight  int64
	Cap       float64
	NoLoadRTT time.Duration
	// Learned: at least one window of samples has updated the limit.
	Learned bool
	// Proven is AdaptiveLimiter.Proven (0: not known, or no adaptive
	// limit); Refuses is AdaptiveLimiter.Refuses.
	Proven  int64
	Refuses bool
}

// Learned reports whether a window of samples has updated the limit yet.
func (l *AdaptiveLimiter) Learned() bool { return l.updates.Load() > 0 }

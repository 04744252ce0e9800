package origins

import (
	"math"
	"time"
)

// LimitSample is one finished measurement of an origin: an attempt's time to
// response headers, and whether the origin refused or dropped it (a 503 or
// 429 answer, a timeout, a reset: the signs of an origin past its capacity).
type LimitSample struct {
	RTT     time.Duration
	Dropped bool
}

// LimitAlgorithm learns how many concurrent attempts an origin sustains. It
// only computes; AdaptiveLimiter feeds it windows of samples and enforces
// nothing (the shedder reads the limit as a pressure signal). Implementations
// need not be safe for concurrent use: the limiter serialises calls.
type LimitAlgorithm interface {
	// Update folds one window of samples into the limit: rtt is the mean time
	// to headers of the window's successful samples (0 if none), dropped the
	// number of dropped ones, maxInFlight the highest concurrency seen while
	// the window was open. It returns the new limit.
	Update(now time.Time, rtt time.Duration, samples, dropped int, maxInFlight int64) float64
	// Limit is the current limit.
	Limit() float64
	// NoLoadRTT is the learned latency of the origin when nothing queues (0
	// until learned).
	NoLoadRTT() time.Duration
}

// GradientLimit is Floodgate's limit algorithm. Its idea follows the
// gradient limits of Netflix's concurrency-limits library and Envoy's
// adaptive concurrency filter: compare the latency the origin shows now with
// the latency it shows when nothing queues. While the ratio stays within
// Tolerance, the origin has spare concurrency and the limit grows (only when
// traffic actually used at least half of it; a limit traffic leaves mostly
// unused decays toward twice the concurrency used); past it the limit shrinks in proportion, which settles it where the
// origin's queue starts to build. Drops (refusals, timeouts) cut the limit
// multiplicatively at once: an origin that refuses instead of queueing shows
// no latency gradient.
//
// The no-load latency is the lowest window mean seen, allowed to creep up
// slowly (time constant NoLoadDrift) in lightly loaded windows, so a
// permanently slower origin is re-learned without an explicit probe.
// Known limit: a gateway that starts while its origin is already past
// capacity never sees the no-load latency until the overload ends; until
// then the limit does not shrink below what it first saw (the hard caps and
// drops still apply).
type GradientLimit struct {
	cfg    AdaptiveLimitConfig
	limit  float64
	noLoad float64 // seconds; 0 = not learned
	last   time.Time
	// lastDrop is when a window last had drops: for a while after it the
	// limit grows by one request per second at most (additive increase),
	// so it hovers just under the concurrency where drops begin instead of
	// probing back into them.
	lastDrop time.Time
	// refuseCeil is just under the concurrency at which the origin last
	// refused while traffic pressed the limit (0: none known). For
	// dropMemory after a drop the limit stays at or under it; after that
	// it probes above it one request a second, so an origin that refuses
	// past a fixed capacity meets one short probe per dropMemory instead
	// of a backoff-and-regrow cycle every second.
	refuseCeil float64
	// lastCut is when refusals last cut the limit.
	lastCut time.Time
	// refLimit is the limit when the current run of decreases began
	// (0: not decreasing); refRTT the highest latency seen in the run, and
	// refAt when it was seen: the check that shrinking helps waits until
	// the requests queued at the origin then have drained.
	refLimit, refRTT float64
	refAt            time.Time
	// serving bounds the limit while the origin is saturated (0: not
	// engaged); calm counts consecutive windows at no-load latency while
	// engaged. See updateServing.
	serving float64
	calm    int
	// blockN answers in blockT seconds of windows that reached the bound
	// make a block; peakRate is the highest block rate since the bound
	// engaged: the origin's capacity as shown, which the bound is
	// computed from.
	blockN   int
	blockT   float64
	peakRate float64
	// fed is the least bound found to keep the origin fed (0: none yet).
	fed float64
	// gatewayDelay is the gateway's own delay per attempt (its scheduling
	// wait); the bound is used only while its headroom covers that delay
	// with room to spare, and not again before delayHeldUntil once it did
	// not (see servingDelayCovered).
	gatewayDelay   GatewayDelaySource
	delayHeldUntil time.Time
}

// dropMemory is how long after a drop the limit stays under the
// concurrency where the origin refused; for as long again after that it
// grows by at most one request a second.
const dropMemory = 10 * time.Second

// NewGradientLimit starts at cfg.Initial.
func NewGradientLimit(cfg AdaptiveLimitConfig) *GradientLimit {
	return &GradientLimit{cfg: cfg, limit: float64(cfg.Initial), gatewayDelay: runtimeGatewayDelay}
}

// WithGatewayDelay replaces the source of the gateway's own delay (tests,
// simulations; nil: none).
func (g *GradientLimit) WithGatewayDelay(src GatewayDelaySource) *GradientLimit {
	g.gatewayDelay = src
	return g
}

// Limit implements LimitAlgorithm: the gradient's limit, or while the
// origin is saturated the lower serving bound (see updateServing).
func (g *GradientLimit) Limit() float64 {
	if g.serving > 0 {
		return math.Min(g.limit, g.serving)
	}
	return g.limit
}

// NoLoadRTT implements LimitAlgorithm.
func (g *GradientLimit) NoLoadRTT() time.Duration {
	return time.Duration(g.noLoad * float64(time.Second))
}

// Update implements LimitAlgorithm.
func (g *GradientLimit) Update(now time.Time, rtt time.Duration, samples, dropped int, maxInFlight int64) float64 {
	dt := 0.0
	if !g.last.IsZero() {
		dt = now.Sub(g.last).Seconds()
	}
	g.last = now
	past, rebased := g.updateGradient(now, dt, rtt, samples, dropped, maxInFlight)
	g.updateServing(now, dt, rtt, samples, maxInFlight, past, rebased)
	return g.Limit()
}

// The serving bound (updateServing): headroom over the origin's serving
// concurrency, and when the origin counts as no longer queueing.
const (
	servingHeadroom = 1.1 // x the serving concurrency...
	servingExtra    = 1.0 // ...plus one request
	// servingBlock is how long the windows that reached the bound are
	// counted together for one answer rate.
	servingBlock = time.Second
	// servingUnderfed: a block rate below this share of the best with the
	// bound in use means the origin is under-fed.
	servingUnderfed  = 0.9
	servingCalmRatio = 1.05 // window mean within this of no-load: nothing queues
	servingCalmFor   = 3    // consecutive such windows release the bound
	// servingDelayMargin: the headroom must cover this many times the
	// gateway's measured delay (its mean scheduling wait)...
	servingDelayMargin = 2.0
	// ...plus the delay a gateway under a spike adds that the scheduling
	// wait does not show (the poller's, the loopback's, the sockets'):
	// measured at 2,000 req/s (10 x 5 ms, two cores shared with the load
	// generators, quiet otherwise), the bound held 11.7-12.6 attempts and
	// the origin answered 1,677-1,724/s of the 1,883-1,892/s it served
	// driven directly, so each attempt spent 1.7-2.0 ms outside the
	// origin's service against about 0.1 ms when quiet, and the
	// scheduling wait did not release the bound (its mean stayed under
	// 0.55 ms). The bound then cost 3-5 % of goodput.
	servingUnseenDelay = 2 * time.Millisecond
	// servingDelayHold: after the gateway's delay released the bound, it
	// is not engaged again for this long, so a delay hovering around the
	// threshold does not switch it window by window.
	servingDelayHold = time.Second
)

// servingDelayCovered says whether the bound's headroom absorbs the
// gateway's own delay. The bound admits servingFor(rate) attempts, which
// keep the origin fed as long as each spends at most that / rate more
// outside the origin's service than when the no-load latency was learned,
// i.e. (servingHeadroom - 1) x no-load + servingExtra / rate: 10 x 5 ms,
// 1.1 ms; 10 x 20 ms, 4.2 ms; 50 x 100 ms, 12 ms; 5 x 100 ms, 30 ms. A
// busy gateway adds to every attempt about its mean scheduling wait (the
// goroutine waiting for the answer must get a CPU again), times
// servingDelayMargin, plus servingUnseenDelay it does not show. When the
// headroom does not cover that, the answer rate (and the bound) is the
// gateway's as much as the origin's, which is what cost a 10 x 5 ms origin
// goodput (and, under load, critical requests) at 2,000 req/s; then the
// gradient alone sets the limit. In effect the bound serves origins whose
// no-load latency is long next to the gateway's own delay (10 slots:
// 20 ms and more on an idle gateway). A nil source skips the check
// (simulations of the bound itself).
func (g *GradientLimit) servingDelayCovered(rate float64) bool {
	if g.gatewayDelay == nil || rate <= 0 {
		return true
	}
	covers := (servingHeadroom-1)*g.noLoad + servingExtra/rate
	return servingDelayMargin*g.gatewayDelay().Seconds()+servingUnseenDelay.Seconds() <= covers
}

// updateServing keeps the origin's own queue short while it is saturated.
// The gradient settles where the origin's time to headers is Tolerance x
// its no-load latency (plus Slack), so a saturated origin holds about
// Tolerance - 1 of its serving concurrency in its own queue, first come
// first served, where the gateway's priority order cannot reach: at
// 10 x 20 ms the limit sat at 14-15 against 10 slots and every critical
// request paid ~10 ms there. The concurrency the origin actually serves
// is, by Little's law, its completions per second x its no-load latency;
// while saturated the limit is bounded by that x servingHeadroom +
// servingExtra (10 slots: 12), so the excess waits in the gateway's queue,
// ordered by priority, and the origin still always has the next request
// at hand (goodput is kept).
//
// The rate is the origin's capacity as shown: the answers per second of
// the window that engaged the bound (its latency past the tolerance: the
// origin queues, so it answers as fast as it can), then the best rate of
// the servingBlock blocks of windows whose peak concurrency reached the
// bound (windows below it measure the demand, not the origin). It never
// follows a falling rate down: with every slot of the bound in use, fewer
// answers mean the attempts spend longer outside the origin (a busier
// gateway, a slower network), and following them cut a 10 x 5 ms origin
// to half its capacity (5.6 slots) when the spike made the gateway read
// answers later (FLOODGATE_EXPERIMENT_CAPACITY=2000). Instead, a block
// 10 % under the best with the bound in use adds one request. The bound
// moves down no faster than the gradient may (10 % a window when it
// engages, then at most halving per block), the gradient does not probe
// upward meanwhile (the bound holds its latency down on purpose), and the
// lower of the two is the limit, so an origin that really lost capacity
// is still followed down by the gradient.
//
// The bound is used only while the gateway's own delay is small next to
// its headroom (servingDelayCovered): the rate it is computed from is the
// origin's only then.
//
// Hysteresis: the bound engages only in a window past the tolerance, and
// is released after servingCalmFor consecutive windows at no-load latency
// (within servingCalmRatio: the origin no longer queues, the demand fell
// or the bound sits below the origin's capacity), or when the gradient
// finds that latency is not queueing (rebased).
func (g *GradientLimit) updateServing(now time.Time, dt float64, rtt time.Duration, samples int, maxInFlight int64, past, rebased bool) {
	if !g.cfg.ServingBound {
		return
	}
	if rebased {
		g.serving, g.calm = 0, 0
		return
	}
	if dt <= 0 || rtt <= 0 || g.noLoad == 0 || samples <= 0 {
		return
	}
	rate := float64(samples) / dt
	// The rate the bound rests on: the best shown since it engaged.
	based := rate
	if g.serving > 0 {
		based = math.Max(rate, g.peakRate)
	}
	if (g.serving > 0 || past) && !g.servingDelayCovered(based) {
		// The gateway's own delay is too large for the headroom (see
		// servingDelayCovered): the gradient alone, for a while.
		g.serving, g.calm = 0, 0
		g.delayHeldUntil = now.Add(servingDelayHold)
		return
	}
	if g.serving == 0 && now.Before(g.delayHeldUntil) {
		return
	}
	// Never faster down than the gradient itself may shrink (at most
	// halving the gap, smoothed), so a latency that is not queueing (a
	// slower network) throttles no harder than the gradient already does
	// until it is found out (rebased).
	slowest := 1 - 0.5*g.cfg.Smoothing
	if g.serving == 0 {
		if past {
			g.peakRate, g.fed, g.calm, g.blockN, g.blockT = 0, 0, 0, 0, 0
			g.serving = g.clamp(math.Max(g.servingFor(rate), slowest*g.limit))
		}
		return
	}
	if rtt.Seconds() <= servingCalmRatio*g.noLoad {
		if g.calm++; g.calm >= servingCalmFor {
			g.serving, g.calm = 0, 0
		}
		return
	}
	g.calm = 0
	if float64(maxInFlight) >= math.Floor(g.Limit()) {
		// The answer rate is judged over a block of such windows: one
		// window's count is too noisy (at 500 req/s about 50 answers, so
		// the best of many windows overstated the rate, and comparisons
		// with it read noise as an under-fed origin).
		g.blockN += samples
		g.blockT += dt
		if g.blockT < servingBlock.Seconds() {
			return
		}
		rate := float64(g.blockN) / g.blockT
		g.blockN, g.blockT = 0, 0
		g.peakRate = math.Max(g.peakRate, rate)
		if rate < servingUnderfed*g.peakRate {
			// Every slot of the bound in use, yet fewer answers than the
			// origin has shown it gives: the attempts spend longer
			// outside the origin (a busier gateway reads its answers
			// later), not in its queue. Feed it one more, and never go
			// below that again while engaged (else the bound saws between
			// the rate's estimate and the fed concurrency).
			g.serving++
			g.fed = g.serving
			g.limit = math.Max(g.limit, math.Min(g.serving, float64(g.cfg.Max)))
		} else {
			// At most halving per block: a block is ten windows, and the
			// gradient releases the bound (rebased) within five if the
			// latency is not queueing.
			g.serving = math.Max(math.Max(g.servingFor(g.peakRate), 0.5*g.serving), g.fed)
		}
		g.serving = g.clamp(g.serving)
	}
	g.serving = math.Min(g.serving, g.limit)
}

// servingFor is the bound for an origin answering rate requests a second:
// its serving concurrency by Little's law, with the headroom.
func (g *GradientLimit) servingFor(rate float64) float64 {
	return servingHeadroom*rate*g.noLoad + servingExtra
}

// updateGradient moves the gradient limit. past says the window's latency
// was past the tolerance (the origin queues); rebased that the no-load
// latency was re-learned because shrinking did not help.
func (g *GradientLimit) updateGradient(now time.Time, dt float64, rtt time.Duration, samples, dropped int, maxInFlight int64) (past, rebased bool) {
	c := g.cfg
	if dropped > 0 && float64(dropped) >= c.DropRatio*float64(samples) {
		// Traffic pressed the limit and the origin refused: it refuses at
		// maxInFlight or less. Stay one request under that (the gate
		// rounds the limit down). A drop while traffic used less of the
		// limit (a stray timeout) says nothing about concurrency.
		at := float64(maxInFlight)
		pressed := maxInFlight > 0 && at >= math.Floor(g.Limit())
		// Cut in proportion to the share refused (as DCTCP cuts its window
		// by half the share of marked packets), at least by Backoff: a
		// spike's onset that ran the origin well past its capacity, where
		// most answers are refusals, gets there in a step or two instead of
		// a Backoff at a time with refusals at each. Once per latency, as
		// TCP cuts once per round trip: refusals of attempts sent before
		// the last cut are its echo, not news (windows close early on
		// refusals, so several can close within one latency).
		echo := !g.lastCut.IsZero() && now.Sub(g.lastCut).Seconds() < math.Max(g.noLoad, rtt.Seconds())
		if !echo {
			g.limit = g.clamp(g.limit * math.Min(c.Backoff, 1-0.5*float64(dropped)/float64(samples)))
			g.lastCut = now
		}
		if pressed {
			ceil := at - 0.5
			if g.refuseCeil > 0 && now.Sub(g.lastDrop) < dropMemory {
				ceil = math.Min(ceil, g.refuseCeil)
			}
			g.refuseCeil = math.Max(float64(c.Min), ceil)
			g.limit = math.Min(g.limit, g.refuseCeil)
		}
		g.lastDrop = now
		return false, false
	}
	short := rtt.Seconds()
	if short <= 0 {
		return false, false
	}
	// Light: traffic used less than half of what it was allowed (the
	// serving bound, while engaged).
	light := float64(maxInFlight)*2 < g.Limit()
	switch {
	case g.noLoad == 0:
		g.noLoad = short
	case short < g.noLoad:
		// Follow a faster window part of the way: the plain minimum of
		// noisy window means sits below the origin's typical no-load
		// latency and would read ordinary noise as queueing.
		g.noLoad += c.Smoothing * (short - g.noLoad)
	case light && dt > 0 && c.NoLoadDrift > 0:
		// Only a lightly loaded window shows the no-load latency; under
		// load the latency includes queueing and must not raise it.
		g.noLoad += (short - g.noLoad) * (1 - math.Exp(-dt/c.NoLoadDrift.Seconds()))
	}
	// The slack keeps scheduling noise on a very fast origin (a few hundred
	// microseconds against a 1 ms no-load latency) from reading as queueing.
	gradient := (c.Tolerance*g.noLoad + c.Slack.Seconds()) / short
	gradient = math.Max(0.5, math.Min(1, gradient))
	if gradient >= 1 {
		g.refLimit = 0
		if light {
			// Traffic used less than half the limit: no evidence for a
			// larger one, and a limit far above what traffic ever needed
			// would let a sudden spike queue a long way before shedding
			// starts. Decay toward twice the concurrency actually used.
			if floor := 2 * float64(maxInFlight); floor < g.limit {
				g.limit = g.clamp(g.limit + c.Smoothing*(floor-g.limit))
			}
			return false, false
		}
		if g.serving > 0 {
			// The serving bound holds the latency within the tolerance on
			// purpose; that is no evidence for a larger limit.
			return false, false
		}
		// Probe upward by a share of a queue's worth: Smoothing x
		// sqrt(limit), so a small origin grows by under a request per
		// window (its latency answers before the next step) and a large
		// one still finds thousands within tens of seconds.
		// While the origin answers at its no-load latency (within 10 %),
		// nothing queues at all: probe a full sqrt(limit) per window.
		step := 0.5 * math.Max(1, math.Sqrt(g.limit))
		if short <= 1.1*g.noLoad {
			step = math.Max(1, math.Sqrt(g.limit))
		}
		if !g.lastDrop.IsZero() && now.Sub(g.lastDrop) < 2*dropMemory {
			step = math.Min(step, dt)
		}
		next := g.limit + step
		if g.refuseCeil > 0 && now.Sub(g.lastDrop) < dropMemory {
			next = math.Min(next, math.Max(g.limit, g.refuseCeil))
		}
		g.limit = g.clamp(next)
		return false, false
	}
	// Past the tolerance: shrink, but check that shrinking helps. Queueing
	// at the origin falls with concurrency; a slow network or a gateway
	// short of CPU does not. If the limit fell by 40 % and the latency by
	// less than 10 % from its peak in the run, the latency is not the
	// origin's queue: take it as the new no-load latency and restore the
	// limit, leaving the gateway's own overload to the global scope.
	// The requests already queued at the origin keep the latency rising for
	// about one latency after the limit starts to fall, so the latency is
	// compared with its peak, not with its value when the run began, and
	// only once twice the peak latency has passed since: reading that lag
	// as "shrinking does not help" ratcheted the no-load latency and the
	// limit up without end
	// (TestAdaptiveLimitWaitsForTheOriginQueueToDrainBeforeRebasing).
	if g.refLimit == 0 {
		g.refLimit, g.refRTT, g.refAt = g.limit, short, now
	} else if short > g.refRTT {
		g.refRTT, g.refAt = short, now
	}
	g.limit = g.clamp(g.limit + c.Smoothing*(g.limit*gradient-g.limit))
	drained := now.Sub(g.refAt).Seconds() >= 2*g.refRTT
	if drained && g.limit <= 0.6*g.refLimit && short >= 0.9*g.refRTT {
		g.noLoad = short / c.Tolerance
		g.limit = g.refLimit
		g.refLimit = 0
		return true, true
	}
	return true, false
}

func (g *GradientLimit) clamp(l float64) float64 {
	return math.Max(float64(g.cfg.Min), math.Min(float64(g.cfg.Max), l))
}

var _ LimitAlgorithm = (*GradientLimit)(nil)

package origins

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/sony/gobreaker/v2"
)

// BreakerState is the state of an instance's circuit breaker.
type BreakerState int32

// Breaker states.
const (
	BreakerClosed BreakerState = iota
	BreakerHalfOpen
	BreakerOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half_open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

func fromGobreaker(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	case gobreaker.StateOpen:
		return BreakerOpen
	}
	return BreakerClosed
}

// Sentinel errors fed to gobreaker's done callback; never returned to callers.
var (
	errAttemptFailed   = errors.New("attempt failed")
	errAttemptCanceled = errors.New("attempt canceled")
)

// breaker is gobreaker's state machine with admission kept beside it in
// atomics. gobreaker's two-step Allow returns a closure per admitted
// attempt, so the breaker admits on its own and hands gobreaker each
// attempt at its end, through Execute, with the outcome:
//   - the state is mirrored with a generation of ours (both moved by
//     gobreaker's state-change callback, under its lock), so a pick skips
//     open instances and admits in the closed state without a lock;
//   - gobreaker only moves from open to half-open when asked, so the mirror
//     keeps the moment the open period ends: from then on the instance is
//     eligible again, and the next admission asks gobreaker, which makes the
//     transition;
//   - half-open probes are counted here (at most maxProbes per half-open
//     generation; a canceled probe gives its slot back), as gobreaker
//     counted them at Allow;
//   - an attempt admitted in another generation than the current one is
//     not reported, as gobreaker ignored a callback from an old generation:
//     a success from before the breaker opened must not close it.
type breaker struct {
	cb *gobreaker.CircuitBreaker[struct{}]
	// sg is the generation (above breakerGenShift) and the BreakerState.
	sg        atomic.Uint64
	openUntil atomic.Int64 // origin clock nanoseconds
	// probes is the half-open generation (above 32 bits) and the probes
	// admitted in it.
	probes    atomic.Uint64
	maxProbes uint32 // half-open admissions per generation
}

const breakerGenShift = 8

func (b *breaker) load() (BreakerState, uint64) {
	sg := b.sg.Load()
	return BreakerState(sg & (1<<breakerGenShift - 1)), sg >> breakerGenShift
}

// breakerSlot is an admitted attempt's place in its breaker: reported once,
// at the attempt's end. The zero slot (panic mode bypassed the breaker)
// reports nothing.
type breakerSlot struct {
	b     *breaker
	gen   uint64
	probe bool
}

type breakerEnv struct {
	origin string
	addr   string
	log    *slog.Logger
	clock  func() int64
	hook   func(origin, instance string, from, to BreakerState)
}

func newBreaker(cfg BreakerConfig, env breakerEnv) *breaker {
	b := &breaker{maxProbes: max(cfg.HalfOpenMax, 1)}
	timeout := cfg.OpenTimeout
	st := gobreaker.Settings{
		Name:         env.origin + "/" + env.addr,
		MaxRequests:  cfg.HalfOpenMax,
		Interval:     cfg.Interval,
		BucketPeriod: cfg.Interval / 10,
		Timeout:      timeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if cfg.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= cfg.ConsecutiveFailures {
				return true
			}
			return cfg.FailureRatio > 0 && c.Requests >= cfg.MinRequests && c.Requests > 0 &&
				float64(c.TotalFailures)/float64(c.Requests) >= cfg.FailureRatio
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errAttemptCanceled) },
		// Called with gobreaker's lock held: atomics and a log line only.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			f, t := fromGobreaker(from), fromGobreaker(to)
			if t == BreakerOpen {
				b.openUntil.Store(env.clock() + int64(timeout))
			}
			_, gen := b.load()
			if t == BreakerHalfOpen {
				b.probes.Store((gen + 1) << 32)
			}
			b.sg.Store((gen+1)<<breakerGenShift | uint64(t))
			lvl := slog.LevelInfo
			if t == BreakerOpen {
				lvl = slog.LevelWarn
			}
			env.log.Log(context.Background(), lvl, "circuit breaker state change",
				"origin", env.origin, "instance", env.addr, "from", f.String(), "to", t.String())
			if env.hook != nil {
				env.hook(env.origin, env.addr, f, t)
			}
		},
	}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](st)
	return b
}

// available reports whether the breaker would plausibly admit. A half-open
// breaker that has let its probes through admits nothing more until they
// settle, so it counts as unavailable: otherwise panic mode would not see
// it, and a lone half-open instance would answer "no healthy instances"
// instead of taking traffic in panic mode.
func (b *breaker) available(now int64) bool {
	switch st, _ := b.load(); st {
	case BreakerOpen:
		return now >= b.openUntil.Load()
	case BreakerHalfOpen:
		return uint32(b.probes.Load()) < b.maxProbes
	}
	return true
}

// isOpen reports whether the breaker is open and its open period not over.
func (b *breaker) isOpen(now int64) bool {
	st, _ := b.load()
	return st == BreakerOpen && now < b.openUntil.Load()
}

// admit takes a slot for one attempt; false means refused (open, or
// half-open with its probes out).
func (b *breaker) admit() (breakerSlot, bool) {
	st, gen := b.load()
	switch st {
	case BreakerClosed:
		return breakerSlot{b: b, gen: gen}, true
	case BreakerOpen:
		// Past the open period (the pick saw it eligible) gobreaker
		// half-opens when asked; before it, this refuses.
		if b.cb.State() != gobreaker.StateHalfOpen {
			return breakerSlot{}, false
		}
		if st, gen = b.load(); st != BreakerHalfOpen {
			return breakerSlot{}, false
		}
	}
	for {
		p := b.probes.Load()
		if p>>32 != gen&(1<<32-1) || uint32(p) >= b.maxProbes {
			// Another round's count, or this round's probes are out.
			return breakerSlot{}, false
		}
		if b.probes.CompareAndSwap(p, p+1) {
			return breakerSlot{b: b, gen: gen, probe: true}, true
		}
	}
}

// unprobe gives a canceled probe's slot back to its round, if that round
// is still the current one.
func (b *breaker) unprobe(gen uint64) {
	for {
		p := b.probes.Load()
		if p>>32 != gen&(1<<32-1) || uint32(p) == 0 {
			return
		}
		if b.probes.CompareAndSwap(p, p-1) {
			return
		}
	}
}

// report hands gobreaker the attempt's outcome: err nil for a success,
// errAttemptFailed, or errAttemptCanceled (not counted either way).
func (s breakerSlot) report(err error) {
	b := s.b
	if b == nil {
		return
	}
	if _, gen := b.load(); gen != s.gen {
		return
	}
	if s.probe && err == errAttemptCanceled {
		b.unprobe(s.gen)
	}
	_, _ = b.cb.Execute(func() (struct{}, error) {
		// Execute counted a request in gobreaker's current generation;
		// if that is no longer ours (a transition since the check
		// above), the attempt is excluded rather than counted there.
		if _, gen := b.load(); gen != s.gen {
			return struct{}{}, errAttemptCanceled
		}
		return struct{}{}, err
	})
}

func (b *breaker) State() BreakerState {
	st, _ := b.load()
	return st
}

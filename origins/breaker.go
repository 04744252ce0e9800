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

// breaker wraps a gobreaker two-step breaker and mirrors its state into atomics, so a
// pick can skip open instances without taking the breaker's mutex. gobreaker only moves
// from open to half-open when asked, so the mirror also keeps the moment the open
// period ends: from then on the instance is eligible again and the next admission
// through gobreaker performs the transition and gates the probes.
type breaker struct {
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	state     atomic.Int32
	openUntil atomic.Int64 // origin clock nanoseconds
	maxProbes uint32       // half-open admissions per generation
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
			b.state.Store(int32(t))
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
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	return b
}

// available reports whether the breaker would plausibly admit. A half-open
// breaker that has let its probes through admits nothing more until they
// settle, so it counts as unavailable: otherwise panic mode would not see
// it, and a lone half-open instance would answer "no healthy instances"
// instead of taking traffic in panic mode.
func (b *breaker) available(now int64) bool {
	switch BreakerState(b.state.Load()) {
	case BreakerOpen:
		return now >= b.openUntil.Load()
	case BreakerHalfOpen:
		return b.cb.Counts().Requests < b.maxProbes
	}
	return true
}

// isOpen reports whether the breaker is open and its open period not over.
func (b *breaker) isOpen(now int64) bool {
	return BreakerState(b.state.Load()) == BreakerOpen && now < b.openUntil.Load()
}

// admit asks gobreaker for a slot; nil means rejected (open, or half-open and full).
func (b *breaker) admit() func(error) {
	done, err := b.cb.Allow()
	if err != nil {
		return nil
	}
	return done
}

func (b *breaker) State() BreakerState { return BreakerState(b.state.Load()) }

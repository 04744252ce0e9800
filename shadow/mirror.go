package shadow

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Results of a shadowing decision, the values of the metric label
// "result".
const (
	ResultSent               = "sent"                // mirrored; the shadow answered (any status)
	ResultSkippedConcurrency = "skipped_concurrency" // max_concurrency shadow requests were in flight
	ResultSkippedBody        = "skipped_body"        // the body was streamed or over max_body
	ResultError              = "error"               // mirrored; no answer (connect error, timeout, reset, no instance)
)

// Mirror decides which of a route's requests are copied to its shadow
// and holds the in-flight bound. The bound is a counter that outlives
// config snapshots (see Slots), so a reload never lets more than
// MaxConcurrency copies run at once.
type Mirror struct {
	cfg   Config
	slots *atomic.Int64
	// draw returns values in [0, 1); tests replace it.
	draw func() float64
}

// NewMirror returns the mirror of one route's config (defaults filled)
// counting in-flight copies in slots; draw nil is math/rand/v2.
func NewMirror(cfg Config, slots *atomic.Int64, draw func() float64) *Mirror {
	if draw == nil {
		draw = rand.Float64
	}
	return &Mirror{cfg: cfg.WithDefaults(), slots: slots, draw: draw}
}

// Config is the effective config.
func (m *Mirror) Config() Config { return m.cfg }

// Sampled reports whether this request is one of the fraction mirrored.
func (m *Mirror) Sampled() bool { return m.cfg.Fraction >= 1 || m.draw() < m.cfg.Fraction }

// BodyFits reports whether a body the gateway holds whole, of n bytes, may
// be replayed.
func (m *Mirror) BodyFits(n int) bool { return int64(n) <= int64(m.cfg.MaxBody) }

// TryAcquire takes an in-flight slot, or reports that MaxConcurrency
// copies are already running; Release gives it back.
func (m *Mirror) TryAcquire() bool {
	if m.slots.Add(1) > int64(m.cfg.MaxConcurrency) {
		m.slots.Add(-1)
		return false
	}
	return true
}

// Release returns a slot taken by TryAcquire.
func (m *Mirror) Release() { m.slots.Add(-1) }

// InFlight is the number of copies running.
func (m *Mirror) InFlight() int64 { return m.slots.Load() }

// Answer is one side's result: its HTTP status (0: no answer) and its
// time to response headers.
type Answer struct {
	Status  int
	Latency time.Duration
}

// Comparison pairs a primary's answer with its shadow's, which arrive in
// either order on different goroutines; the second one to arrive reports
// both. A shadow without an answer is not compared.
type Comparison struct {
	arrived         atomic.Int32
	primary, shadow Answer
	report          func(primary, shadow Answer)
}

// NewComparison returns a pair that calls report once both sides are in.
func NewComparison(report func(primary, shadow Answer)) *Comparison {
	return &Comparison{report: report}
}

// Primary records the primary's answer.
func (p *Comparison) Primary(a Answer) {
	p.primary = a
	p.arrive()
}

// Shadow records the shadow's answer.
func (p *Comparison) Shadow(a Answer) {
	p.shadow = a
	p.arrive()
}

func (p *Comparison) arrive() {
	// The atomic add orders each side's write before the other side's
	// read: whoever arrives second sees both.
	if p.arrived.Add(1) == 2 && p.shadow.Status != 0 {
		p.report(p.primary, p.shadow)
	}
}

// SameClass reports whether two statuses are of one class (2xx, 4xx, ...).
func SameClass(a, b int) bool { return a/100 == b/100 }

package origins

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/internal/racebuild"
)

// Ticket is one admitted attempt, handed out by Pick: its holder reports the
// attempt's end through Done exactly once (optionally preceded by one
// HeadersOnly report), and must not use the Ticket afterwards. The zero
// Ticket is valid and Done on it does nothing (a slot whose attempt was
// already reported).
//
// Tickets are pooled, because a closure per attempt was the largest share
// of a proxied request's allocations. A pooled object used after it was
// returned would charge another request's instance, so a Ticket is a handle:
// the pooled state plus the generation it was issued in. The state's
// generation moves on when the final report returns it to the pool, so a
// report through a stale handle (a second final report, or any report after
// it) cannot reach whoever holds the state next: it is dropped and counted
// (TicketMisuses), and in a race-detector build it panics, because it is a
// bug in the holder even though it is harmless here.
type Ticket struct {
	t   *ticket
	gen uint64
}

// ticket is a Ticket's pooled state.
type ticket struct {
	// state is the generation (above ticketGenShift) and the reports
	// seen in it (ticketAnswered, ticketFinished). It is the only field
	// read before a report has established that its handle is current.
	state atomic.Uint64
	o     *Origin
	in    *Instance
	brk   breakerSlot // zero when panic mode bypassed the breaker
	start time.Time
}

const (
	ticketAnswered = 1 << iota // the HeadersOnly report was made
	ticketFinished             // the final report was made
	ticketGenShift = 2
)

var ticketPool = sync.Pool{New: func() any { return new(ticket) }}

// ticketMisuses counts reports through stale handles (see Ticket).
var ticketMisuses atomic.Int64

// TicketMisuses is how many reports arrived through a Ticket that had
// already made its final report. Each is a bug in the Ticket's holder; tests
// assert it stays 0.
func TicketMisuses() int64 { return ticketMisuses.Load() }

// CheckNoTicketMisuse is TicketMisuses as a test-binary check: an error
// if any report arrived through a stale Ticket.
func CheckNoTicketMisuse() error {
	if n := TicketMisuses(); n != 0 {
		return fmt.Errorf("attempt tickets misused %d times", n)
	}
	return nil
}

func acquireTicket(o *Origin, in *Instance, brk breakerSlot) Ticket {
	return ticketPool.Get().(*ticket).issue(o, in, brk)
}

// issue hands out t, fresh from the pool, for one attempt.
func (t *ticket) issue(o *Origin, in *Instance, brk breakerSlot) Ticket {
	t.o, t.in, t.brk = o, in, brk
	t.start = time.Now()
	return Ticket{t: t, gen: t.state.Load() >> ticketGenShift}
}

// Instance is the instance the attempt was admitted to: nil for the zero
// Ticket, and nil once the final report was made (the state may be another
// attempt's by then).
func (k Ticket) Instance() *Instance {
	if k.t == nil || k.t.state.Load()>>ticketGenShift != k.gen {
		return nil
	}
	return k.t.in
}

// Done reports the attempt's outcome to its origin, instance, breaker and
// the adaptive limit. A HeadersOnly report only ends the wait for an answer
// (the adaptive limit's sample); the final report ends the attempt and
// returns the Ticket.
func (k Ticket) Done(r Result) {
	t := k.t
	if t == nil {
		return
	}
	cur := k.gen << ticketGenShift
	if r.HeadersOnly {
		// Only from the fresh state: a second interim report, or one
		// after the final, is a misuse.
		if !t.state.CompareAndSwap(cur, cur|ticketAnswered) {
			ticketMisused()
			return
		}
		t.observe(&r)
		return
	}
	s := t.state.Load()
	for {
		if s&^(ticketAnswered) != cur {
			// Another generation, or this one already finished.
			ticketMisused()
			return
		}
		if t.state.CompareAndSwap(s, s|ticketFinished) {
			break
		}
		s = t.state.Load()
	}
	// This report owns the state until it is back in the pool.
	if s&ticketAnswered == 0 {
		t.observe(&r)
	} else if r.Latency <= 0 {
		r.Latency = time.Since(t.start)
	}
	t.o.finish(t.in, t.brk, r)
	t.retire(k.gen)
	ticketPool.Put(t)
}

// retire ends generation gen: every handle issued in it goes stale.
func (t *ticket) retire(gen uint64) {
	t.o, t.in, t.brk, t.start = nil, nil, breakerSlot{}, time.Time{}
	t.state.Store((gen + 1) << ticketGenShift)
}

// observe gives the adaptive limit the attempt's time to an answer.
func (t *ticket) observe(r *Result) {
	if r.Latency <= 0 {
		r.Latency = time.Since(t.start)
	}
	t.o.limit.Observe(r.Latency, droppedOutcome(*r), r.Outcome == OutcomeCanceled)
}

func ticketMisused() {
	ticketMisuses.Add(1)
	if racebuild.Enabled {
		panic("origins: attempt reported through a Ticket after its final report")
	}
}

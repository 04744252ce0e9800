package origins

import (
	"sync"
	"testing"

	"github.com/floodgate-dev/floodgate/internal/racebuild"
)

// intentionalMisuses counts the misuses the tests below commit on purpose;
// TestMain fails if TicketMisuses ends anywhere else.
var intentionalMisuses int64

// misuse runs fn, which must report through a stale Ticket exactly once:
// counted, and a panic in a race-detector build.
func misuse(t *testing.T, fn func()) {
	t.Helper()
	before := TicketMisuses()
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		fn()
		return false
	}()
	intentionalMisuses++
	if got := TicketMisuses() - before; got != 1 {
		t.Fatalf("misuses counted: %d, want 1", got)
	}
	if panicked != racebuild.Enabled {
		t.Fatalf("panicked %v, want %v (race build %v)", panicked, racebuild.Enabled, racebuild.Enabled)
	}
}

func TestTicketSecondFinalReportIsDropped(t *testing.T) {
	cfg := staticConfig("10.0.0.1:80")
	o := testOrigin(t, cfg, nil)
	in, d1, err := o.Pick(nil)
	if err != nil {
		t.Fatal(err)
	}
	d1.Done(Result{Outcome: OutcomeSuccess})
	misuse(t, func() { d1.Done(Result{Outcome: OutcomeStatus5xx, Status: 500}) })
	if d1.Instance() != nil {
		t.Fatalf("a reported Ticket still names instance %v", d1.Instance())
	}
	if o.InFlight() != 0 || in.InFlight() != 0 || in.Requests() != 1 || in.Failures() != 0 {
		t.Fatalf("a second report counted: origin in flight %d, instance in flight %d, requests %d, failures %d",
			o.InFlight(), in.InFlight(), in.Requests(), in.Failures())
	}
}

// A handle from the previous generation of a state now issued to another
// attempt (what a holder reporting after its final report has, once the
// pool reissued the state) reaches nothing of that attempt.
func TestStaleTicketCannotReachTheNextHolder(t *testing.T) {
	cfg := staticConfig("10.0.0.1:80")
	o := testOrigin(t, cfg, nil)
	in, cur, err := o.Pick(nil)
	if err != nil {
		t.Fatal(err)
	}
	stale := Ticket{t: cur.t, gen: cur.gen - 1}
	misuse(t, func() { stale.Done(Result{Outcome: OutcomeReset}) })
	misuse(t, func() { stale.Done(Result{Outcome: OutcomeReset, HeadersOnly: true}) })
	if o.InFlight() != 1 || in.InFlight() != 1 || in.Requests() != 0 {
		t.Fatalf("the stale report reached the current attempt: in flight %d/%d, requests %d", o.InFlight(), in.InFlight(), in.Requests())
	}
	if cur.Instance() != in {
		t.Fatalf("the current handle lost its instance: %v", cur.Instance())
	}
	cur.Done(Result{Outcome: OutcomeSuccess})
	if o.InFlight() != 0 || in.Requests() != 1 || in.Failures() != 0 {
		t.Fatalf("after the current report: in flight %d, requests %d, failures %d", o.InFlight(), in.Requests(), in.Failures())
	}
}

// The one interim report, then the final one: the attempt stops awaiting
// an answer at the first and leaves flight at the second.
func TestTicketHeadersOnlyThenFinal(t *testing.T) {
	cfg := staticConfig("10.0.0.1:80")
	o := testOrigin(t, cfg, nil)
	in, d, err := o.Pick(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Limiter().Awaiting() != 1 {
		t.Fatalf("awaiting after the pick: %v", o.Limiter().Awaiting())
	}
	d.Done(Result{Outcome: OutcomeSuccess, Status: 200, HeadersOnly: true})
	if o.Limiter().Awaiting() != 0 || o.InFlight() != 1 || in.Requests() != 0 {
		t.Fatalf("after the interim report: awaiting %v, in flight %d, requests %d", o.Limiter().Awaiting(), o.InFlight(), in.Requests())
	}
	misuse(t, func() { d.Done(Result{Outcome: OutcomeSuccess, Status: 200, HeadersOnly: true}) })
	d.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	if o.InFlight() != 0 || in.Requests() != 1 {
		t.Fatalf("after the final report: in flight %d, requests %d", o.InFlight(), in.Requests())
	}
	misuse(t, func() { d.Done(Result{Outcome: OutcomeSuccess, Status: 200, HeadersOnly: true}) })
}

func TestZeroTicketDoesNothing(t *testing.T) {
	before := TicketMisuses()
	var z Ticket
	z.Done(Result{Outcome: OutcomeReset})
	z.Done(Result{Outcome: OutcomeReset, HeadersOnly: true})
	if z.Instance() != nil || TicketMisuses() != before {
		t.Fatalf("zero ticket: instance %v, misuses %d", z.Instance(), TicketMisuses()-before)
	}
}

// Many attempts picked and reported at once, their states going round the
// pool: every report lands on its own attempt, none is taken for stale.
func TestTicketsUnderConcurrency(t *testing.T) {
	cfg := staticConfig("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	o := testOrigin(t, cfg, nil)
	before := TicketMisuses()
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				_, d, err := o.Pick(nil)
				if err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					d.Done(Result{Outcome: OutcomeSuccess, Status: 200, HeadersOnly: true})
				}
				d.Done(Result{Outcome: OutcomeSuccess, Status: 200})
			}
		})
	}
	wg.Wait()
	var requests uint64
	for _, in := range o.Instances() {
		requests += in.Requests()
	}
	if o.InFlight() != 0 || requests != workers*each || TicketMisuses() != before {
		t.Fatalf("in flight %d, requests %d of %d, misuses %d", o.InFlight(), requests, workers*each, TicketMisuses()-before)
	}
}

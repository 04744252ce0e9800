package origins

import (
	"errors"
	"time"
)

// The attempt loop: where one client request's tries at an origin go, how
// many there are and when. It is transport-neutral: the proxy supplies an
// Exchange that sends one attempt over HTTP; the loop picks instances,
// retries failures on other instances within the retry policy and budget,
// races a hedge against a slow first attempt, and reports every attempt's
// outcome to its instance. Time comes from a Clock, so tests drive it.

// Exchange is one client request's traffic as the loop sees it.
type Exchange[R any] interface {
	// Send makes one attempt at in, on the loop's goroutine.
	Send(in *Instance) (R, error)
	// Fork prepares an attempt that runs on its own goroutine beside
	// others (a hedged request). It is called on the loop's goroutine and
	// must copy there whatever the attempt needs from the request: once
	// the loop has its answer the request is released, while a losing
	// attempt may not have started yet. The returned send owns that copy.
	Fork() func(in *Instance) (R, error)
	// Status is a response's HTTP status.
	Status(resp R) int
	// Discard frees a response that will not be used.
	Discard(resp R)
	// Failure classifies a failed Send: what the instance is charged with.
	// OutcomeCanceled (the client went away, nothing reached the instance)
	// ends the request without a retry.
	Failure(err error) Outcome

	// Attempted is told every attempt once its outcome is known, in the
	// order they end; the last one is the answer the client gets.
	Attempted(a Attempt)
	// Retried and Hedged count a retry that won the budget and a hedge
	// sent (metrics).
	Retried()
	Hedged()
	// Note records an event in the request's story (the passport).
	Note(event string)
}

// Request describes the client request being sent.
type Request struct {
	Method string
	// RouteIdempotent: the route declares every method safe to repeat.
	RouteIdempotent bool
	// Replayable: the request can be sent again (no body, or a buffered
	// one). A streamed body is consumed by the first attempt, so such a
	// request is neither retried nor hedged.
	Replayable bool
	// CrossTo, when set, names the origin a retry or hedge goes to instead
	// of the request's own (an origin group's cross_origin_retries; see
	// Group.CrossTo). Nil, or nil returned, or that origin having no
	// instance to give: the attempt stays in the request's origin.
	CrossTo func(from *Origin) *Origin
	// Fallback, when set, names the origin a first attempt goes to when
	// the request's origin has no instance to give (an origin group's next
	// healthy member: the group's judgement follows a loss a moment later,
	// and nothing has been sent yet, so this is no retry).
	Fallback func(from *Origin) *Origin
}

// Idempotent reports whether the request may be sent twice.
func (r Request) Idempotent() bool { return r.RouteIdempotent || IsIdempotentMethod(r.Method) }

// Clock is the loop's time source.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a stop
	// function.
	After(d time.Duration) (<-chan time.Time, func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After starts a real timer.
func (SystemClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Answer is the response the client gets.
type Answer[R any] struct {
	Response R
	// Done reports the attempt's final outcome to its instance: the
	// caller calls Done.Done once the response is complete (its body
	// streamed), and only once (see Ticket).
	Done Ticket
	// Latency is the attempt's time to response headers.
	Latency time.Duration
}

// PickError is returned when no instance could be picked for the first
// attempt (ErrOriginConcurrency, ErrNoHealthyInstances).
type PickError struct{ Err error }

func (e *PickError) Error() string { return "no instance to send to: " + e.Err.Error() }
func (e *PickError) Unwrap() error { return e.Err }

// Do sends req to origin o through x: the first attempt, then retries on
// other instances, or a hedged race when the origin hedges and the request
// may be sent twice. It returns the answer the client gets (a success, or
// the failed status of the last attempt when no retry could be made) or the
// last transport error (a *PickError when no instance could be picked).
// A nil clock is SystemClock.
func Do[R any](o *Origin, clock Clock, req Request, x Exchange[R]) (Answer[R], error) {
	if clock == nil {
		clock = SystemClock{}
	}
	o.Budget().RecordRequest()
	if req.Replayable && req.Idempotent() {
		if d, ok := o.HedgeDelay(); ok {
			// A hedged run's goroutines share its loop, which therefore
			// lives on the heap; the sequential one below keeps its own on
			// the stack.
			h := &loop[R]{Origin: o, Clock: clock, req: req, x: x}
			return h.hedged(d)
		}
	}
	l := loop[R]{Origin: o, Clock: clock, req: req, x: x}
	return l.sequential()
}

// loop is one request's run.
type loop[R any] struct {
	Origin *Origin
	Clock  Clock
	req    Request
	x      Exchange[R]
}

func (l *loop[R]) sequential() (Answer[R], error) {
	req, x := l.req, l.x
	var triedBuf [4]*Instance
	tried := triedBuf[:0]
	var lastErr error
	var next *Instance // picked for a retry before the failed answer was discarded
	var nextDone Ticket
	for n := 1; ; n++ {
		in, done := next, nextDone
		if in == nil {
			var err error
			if in, done, err = l.pick(tried, n > 1); err != nil {
				if lastErr != nil {
					return Answer[R]{}, lastErr
				}
				return Answer[R]{}, &PickError{Err: err}
			}
		}
		next, nextDone = nil, Ticket{}
		tried = append(tried, in)
		start := l.Clock.Now()
		resp, err := x.Send(in)
		latency := l.Clock.Now().Sub(start)
		a := Attempt{Origin: in.Origin(), Instance: in.Addr(), Start: start, Duration: latency, Retry: n > 1}
		if err != nil {
			a.Outcome = x.Failure(err)
			done.Done(Result{Latency: latency, Outcome: a.Outcome})
			x.Attempted(a)
			lastErr = err
			if req.Replayable && l.retryable(req, n, a.Outcome, 0) && l.spendRetry(a.Outcome.String()) {
				continue
			}
			return Answer[R]{}, err
		}
		a.Status = x.Status(resp)
		a.Outcome = OutcomeForStatus(a.Status)
		x.Attempted(a)
		if a.Outcome.Failed() && req.Replayable && l.retryable(req, n, a.Outcome, a.Status) {
			// Retry only if another instance can take it; otherwise the
			// client gets this answer rather than a synthetic one.
			if nextIn, nextDn, perr := l.pick(tried, true); perr == nil {
				if l.spendRetry(a.Outcome.String()) {
					done.Done(Result{Latency: latency, Outcome: a.Outcome, Status: a.Status})
					x.Discard(resp)
					next, nextDone = nextIn, nextDn
					continue
				}
				nextDn.Done(Result{Outcome: OutcomeCanceled})
			}
		}
		return Answer[R]{Response: resp, Done: done, Latency: latency}, nil
	}
}

// raced is one attempt's end in a hedged request.
type raced[R any] struct {
	in      *Instance
	done    Ticket
	resp    R
	err     error
	start   time.Time
	latency time.Duration
	hedge   bool
	retry   bool
}

var errDenied = errors.New("denied by the retry budget")

// hedged sends the request, and a second copy to another instance if the
// first has not answered after delay. The first good answer wins; a loser
// is abandoned (its response discarded when it arrives, its outcome still
// reported to its instance: its latency is exactly what balancing needs).
// Hedges and retries spend the same budget, so hedging cannot multiply
// load on a struggling origin.
func (l *loop[R]) hedged(delay time.Duration) (Answer[R], error) {
	req, x := l.req, l.x
	results := make(chan raced[R], 4)
	var triedBuf [4]*Instance
	tried := triedBuf[:0]
	pending := 0
	// launch sends an attempt to a newly picked instance. A hedge must also
	// win the retry budget; it is asked only once an instance is available,
	// so a lone instance does not burn budget on hedges it cannot send.
	launch := func(hedge, retry bool) error {
		in, done, err := l.pick(tried, hedge || retry)
		if err != nil {
			return err
		}
		if hedge && !l.Origin.Budget().TryRetry() {
			done.Done(Result{Outcome: OutcomeCanceled})
			x.Note("hedge skipped: retry budget exhausted")
			return errDenied
		}
		if retry && !l.spendRetry("a failed attempt") {
			done.Done(Result{Outcome: OutcomeCanceled})
			return errDenied
		}
		tried = append(tried, in)
		pending++
		send := x.Fork()
		go func() {
			start := l.Clock.Now()
			resp, err := send(in)
			results <- raced[R]{in: in, done: done, resp: resp, err: err, start: start, latency: l.Clock.Now().Sub(start), hedge: hedge, retry: retry}
		}()
		return nil
	}
	if err := launch(false, false); err != nil {
		return Answer[R]{}, &PickError{Err: err}
	}
	timer, stop := l.Clock.After(delay)
	defer stop()
	var fallback *raced[R] // a failed answer, used if nothing better arrives
	var lastErr error
	attempts := 1
	for pending > 0 {
		select {
		case <-timer:
			timer = nil
			if launch(true, false) == nil {
				attempts++
				x.Note("hedged to a second instance after " + delay.String())
				x.Hedged()
			}
		case r := <-results:
			pending--
			a := Attempt{Origin: r.in.Origin(), Instance: r.in.Addr(), Start: r.start, Duration: r.latency, Hedge: r.hedge, Retry: r.retry}
			if r.err != nil {
				a.Outcome = x.Failure(r.err)
				r.done.Done(Result{Latency: r.latency, Outcome: a.Outcome})
				x.Attempted(a)
				lastErr = r.err
				if pending == 0 && fallback == nil && l.retryable(req, attempts, a.Outcome, 0) && launch(false, true) == nil {
					attempts++
				}
				continue
			}
			a.Status = x.Status(r.resp)
			a.Outcome = OutcomeForStatus(a.Status)
			x.Attempted(a)
			if !a.Outcome.Failed() {
				if fallback != nil {
					l.discard(*fallback, OutcomeCanceled)
				}
				go l.abandon(results, pending)
				return Answer[R]{Response: r.resp, Done: r.done, Latency: r.latency}, nil
			}
			if fallback != nil {
				l.discard(*fallback, OutcomeCanceled)
			}
			// Reported now; the zero Ticket stands in for it wherever
			// the fallback goes (discarded, or the client's answer).
			r.done.Done(Result{Latency: r.latency, Outcome: a.Outcome, Status: a.Status})
			r.done = Ticket{}
			fallback = &r
			lastErr = nil
			if pending == 0 && l.retryable(req, attempts, a.Outcome, a.Status) && launch(false, true) == nil {
				attempts++
				l.discard(*fallback, OutcomeCanceled)
				fallback = nil
			}
		}
	}
	if fallback != nil {
		return Answer[R]{Response: fallback.resp, Done: fallback.done, Latency: fallback.latency}, nil
	}
	return Answer[R]{}, lastErr
}

// abandon collects the attempts still running after a hedged request was
// answered, reporting their outcomes and freeing their responses.
func (l *loop[R]) abandon(results <-chan raced[R], pending int) {
	for ; pending > 0; pending-- {
		r := <-results
		if r.err != nil {
			r.done.Done(Result{Latency: r.latency, Outcome: l.x.Failure(r.err)})
			continue
		}
		l.discard(r, OutcomeForStatus(l.x.Status(r.resp)))
	}
}

// discard frees an answered attempt that will not be used.
func (l *loop[R]) discard(r raced[R], outcome Outcome) {
	r.done.Done(Result{Latency: r.latency, Outcome: outcome, Status: l.x.Status(r.resp)})
	l.x.Discard(r.resp)
}

// pick chooses the instance of an attempt. A retry or hedge (extra) goes to
// the origin req.CrossTo names when it has an instance to give, else, like
// a first attempt, to an untried instance of the request's origin; a first
// attempt the origin cannot place goes to req.Fallback.
func (l *loop[R]) pick(tried []*Instance, extra bool) (*Instance, Ticket, error) {
	if extra && l.req.CrossTo != nil {
		if o := l.req.CrossTo(l.Origin); o != nil && o != l.Origin {
			if in, done, err := o.Pick(tried); err == nil {
				l.x.Note("sending to origin " + o.Name() + " of the group")
				return in, done, nil
			}
		}
	}
	in, done, err := l.Origin.Pick(tried)
	if err != nil && !extra && l.req.Fallback != nil && errors.Is(err, ErrNoHealthyInstances) {
		if o := l.req.Fallback(l.Origin); o != nil && o != l.Origin {
			if in, done, ferr := o.Pick(tried); ferr == nil {
				l.x.Note("origin " + l.Origin.Name() + " has no instance; sending to origin " + o.Name() + " of the group")
				return in, done, nil
			}
		}
	}
	return in, done, err
}

// retryable applies the origin's retry policy to attempt n's failure.
func (l *loop[R]) retryable(req Request, n int, outcome Outcome, status int) bool {
	check := RetryCheck{Method: req.Method, RouteIdempotent: req.RouteIdempotent, Attempts: n, Outcome: outcome, Status: status}
	return l.Origin.RetryPolicy().Retryable(check)
}

// spendRetry takes a retry from the origin's budget.
func (l *loop[R]) spendRetry(after string) bool {
	if !l.Origin.Budget().TryRetry() {
		l.x.Note("retry budget exhausted; not retrying")
		return false
	}
	l.x.Note("retrying on another instance after " + after)
	l.x.Retried()
	return true
}

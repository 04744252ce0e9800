package origins

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is an Exchange whose attempts answer from a script, in the
// order they are sent (whichever instance the picker chose): a status or
// an error, optionally held until the test releases it.
type scripted struct {
	mu        sync.Mutex
	script    []answer
	held      map[int]chan struct{}
	sends     chan string // every Send's instance, as it is made
	sent      []string
	attempts  []Attempt
	notes     []string
	retries   int
	hedges    int
	discarded int
}

type answer struct {
	status int
	err    error
}

var (
	errConnect = errors.New("connect refused")
	errTimeout = errors.New("timed out")
)

func newScripted(script ...answer) *scripted {
	return &scripted{script: script, held: map[int]chan struct{}{}, sends: make(chan string, 16)}
}

// hold makes the n-th attempt's answer (from 0) wait until the returned
// function is called.
func (s *scripted) hold(n int) func() {
	ch := make(chan struct{})
	s.held[n] = ch
	return func() { close(ch) }
}

func (s *scripted) Fork() func(*Instance) (int, error) { return s.Send }

func (s *scripted) Send(in *Instance) (int, error) {
	s.mu.Lock()
	n := len(s.sent)
	s.sent = append(s.sent, in.Addr())
	a := s.script[min(n, len(s.script)-1)]
	held := s.held[n]
	s.mu.Unlock()
	s.sends <- in.Addr()
	if held != nil {
		<-held
	}
	return a.status, a.err
}

func (s *scripted) Status(resp int) int { return resp }
func (s *scripted) Discard(int) {
	s.mu.Lock()
	s.discarded++
	s.mu.Unlock()
}

func (s *scripted) Failure(err error) Outcome {
	if errors.Is(err, errTimeout) {
		return OutcomeTimeout
	}
	return OutcomeConnectError
}

func (s *scripted) Attempted(a Attempt) { s.attempts = append(s.attempts, a) }
func (s *scripted) Retried()            { s.retries++ }
func (s *scripted) Hedged()             { s.hedges++ }
func (s *scripted) Note(e string)       { s.notes = append(s.notes, e) }

// manualClock advances only when told; its one timer fires when the test
// says so.
type manualClock struct {
	now   time.Time
	fire  chan time.Time
	armed chan time.Duration
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Unix(1e9, 0), fire: make(chan time.Time, 1), armed: make(chan time.Duration, 1)}
}

func (c *manualClock) Now() time.Time { return c.now }
func (c *manualClock) After(d time.Duration) (<-chan time.Time, func() bool) {
	c.armed <- d
	return c.fire, func() bool { return true }
}

// attemptOrigin is an origin over addrs with the loop's knobs set.
func attemptOrigin(t *testing.T, mutate func(*OriginConfig), addrs ...string) *Origin {
	t.Helper()
	cfg := DefaultOriginConfig()
	cfg.PanicThreshold = 0
	for _, a := range addrs {
		cfg.Instances = append(cfg.Instances, InstanceConfig{Address: a})
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return testOrigin(t, cfg, nil)
}

func outcomes(as []Attempt) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Instance+"="+a.Outcome.String())
	}
	return out
}

func TestDoRetriesAFailedStatusOnAnotherInstance(t *testing.T) {
	o := attemptOrigin(t, nil, "a:1", "b:1")
	x := newScripted(answer{status: 503}, answer{status: 200})
	ans, err := Do[int](o, newManualClock(), Request{Method: "GET", Replayable: true}, x)
	if err != nil || ans.Response != 200 {
		t.Fatalf("answer %d, %v; want the retry's 200", ans.Response, err)
	}
	ans.Done.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	if len(x.sent) != 2 || x.sent[0] == x.sent[1] {
		t.Fatalf("sent to %v; want two different instances", x.sent)
	}
	want := []string{x.sent[0] + "=status_5xx", x.sent[1] + "=success"}
	if got := outcomes(x.attempts); !slices.Equal(got, want) {
		t.Errorf("attempts %v, want %v", got, want)
	}
	if x.retries != 1 || !x.attempts[1].Retry || x.discarded != 1 {
		t.Errorf("retries %d, second attempt retry=%v, discarded %d", x.retries, x.attempts[1].Retry, x.discarded)
	}
	if o.InFlight() != 0 {
		t.Errorf("in flight %d after every done", o.InFlight())
	}
}

// TestDoPassesTheLastFailedAnswerThrough: with no other instance to take a
// retry, the client gets the origin's own answer, not a synthetic error.
func TestDoPassesTheLastFailedAnswerThrough(t *testing.T) {
	o := attemptOrigin(t, nil, "a:1")
	x := newScripted(answer{status: 503})
	ans, err := Do[int](o, newManualClock(), Request{Method: "GET", Replayable: true}, x)
	if err != nil || ans.Response != 503 || len(x.sent) != 1 || x.retries != 0 {
		t.Fatalf("answer %d, %v after %v (%d retries)", ans.Response, err, x.sent, x.retries)
	}
	ans.Done.Done(Result{Outcome: OutcomeStatus5xx, Status: 503})
	if o.InFlight() != 0 {
		t.Errorf("in flight %d", o.InFlight())
	}
}

func TestDoRetryRules(t *testing.T) {
	for _, tt := range []struct {
		name    string
		req     Request
		answer  answer
		budget  float64 // retry.budget min_per_second; 0 leaves none
		want    []string
		wantErr bool
	}{
		{"connect error retried", Request{Method: "GET", Replayable: true}, answer{err: errConnect}, 10,
			[]string{"connect_error", "connect_error"}, true},
		{"timeout not retried", Request{Method: "GET", Replayable: true}, answer{err: errTimeout}, 10,
			[]string{"timeout"}, true},
		{"streamed body not retried", Request{Method: "GET"}, answer{err: errConnect}, 10,
			[]string{"connect_error"}, true},
		{"POST not retried", Request{Method: "POST", Replayable: true}, answer{err: errConnect}, 10,
			[]string{"connect_error"}, true},
		{"idempotent route retries POST", Request{Method: "POST", RouteIdempotent: true, Replayable: true}, answer{err: errConnect}, 10,
			[]string{"connect_error", "connect_error"}, true},
		{"budget exhausted", Request{Method: "GET", Replayable: true}, answer{err: errConnect}, 0,
			[]string{"connect_error"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := attemptOrigin(t, func(c *OriginConfig) {
				c.Retry.Budget = BudgetConfig{Ratio: 0, MinPerSecond: tt.budget, Window: time.Second}
			}, "a:1", "b:1")
			x := newScripted(tt.answer)
			_, err := Do[int](o, newManualClock(), tt.req, x)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, a := range x.attempts {
				got = append(got, a.Outcome.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("attempts %v, want %v", got, tt.want)
			}
			if len(x.sent) == 2 && x.sent[0] == x.sent[1] {
				t.Errorf("retried on the same instance: %v", x.sent)
			}
			if tt.budget == 0 && !slices.Contains(x.notes, "retry budget exhausted; not retrying") {
				t.Errorf("notes %v", x.notes)
			}
			if o.InFlight() != 0 {
				t.Errorf("in flight %d", o.InFlight())
			}
		})
	}
}

func TestDoPickError(t *testing.T) {
	o := attemptOrigin(t, func(c *OriginConfig) { c.MaxConcurrency = 1 }, "a:1")
	_, done, err := o.Pick(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer done.Done(Result{Outcome: OutcomeCanceled})
	_, err = Do[int](o, newManualClock(), Request{Method: "GET", Replayable: true}, newScripted(answer{status: 200}))
	var pe *PickError
	if !errors.As(err, &pe) || !errors.Is(err, ErrOriginConcurrency) {
		t.Fatalf("err = %v, want a PickError for the concurrency cap", err)
	}
}

// TestDoHedgeRace: the first attempt hangs; when the clock fires the hedge
// timer a second instance answers and wins. The loser's outcome is still
// reported to its instance when it ends.
func TestDoHedgeRace(t *testing.T) {
	o := attemptOrigin(t, func(c *OriginConfig) { c.Hedge.Delay = 50 * time.Millisecond }, "a:1", "b:1")
	x := newScripted(answer{status: 200})
	releaseFirst, releaseHedge := x.hold(0), x.hold(1)
	clock := newManualClock()
	type result struct {
		ans Answer[int]
		err error
	}
	out := make(chan result, 1)
	go func() {
		ans, err := Do[int](o, clock, Request{Method: "GET", Replayable: true}, x)
		out <- result{ans, err}
	}()
	if d := <-clock.armed; d != 50*time.Millisecond {
		t.Fatalf("hedge timer armed for %v", d)
	}
	first := <-x.sends
	clock.fire <- clock.now
	if hedge := <-x.sends; hedge == first {
		t.Fatalf("hedged to the same instance %s", hedge)
	}
	releaseHedge()
	r := <-out
	if r.err != nil || r.ans.Response != 200 {
		t.Fatalf("answer %d, %v", r.ans.Response, r.err)
	}
	if len(x.attempts) != 1 || !x.attempts[0].Hedge || x.attempts[0].Instance == first || x.hedges != 1 {
		t.Fatalf("attempts %+v hedges %d; want the hedge to win", x.attempts, x.hedges)
	}
	if !slices.ContainsFunc(x.notes, func(n string) bool { return strings.HasPrefix(n, "hedged to a second instance after 50ms") }) {
		t.Errorf("notes %v", x.notes)
	}
	r.ans.Done.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	if o.InFlight() != 1 {
		t.Errorf("in flight %d; the abandoned first attempt is still running", o.InFlight())
	}
	releaseFirst()
	eventually(t, 5*time.Second, "the abandoned attempt to be reported", func() bool { return o.InFlight() == 0 })
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.discarded != 1 {
		t.Errorf("discarded %d responses, want the loser's", x.discarded)
	}
}

// TestDoRetriesCrossToTheGroupsNextOrigin: with CrossTo set, a retry goes
// to the other origin even though the request's own has an untried
// instance; without it, it stays.
func TestDoRetriesCrossToTheGroupsNextOrigin(t *testing.T) {
	east := attemptOrigin(t, nil, "east-a:1", "east-b:1")
	west := attemptOrigin(t, nil, "west-a:1")
	west.name = "west"
	for _, in := range west.Instances() {
		in.origin = "west"
	}
	cross := func(from *Origin) *Origin { return west }
	x := newScripted(answer{err: errConnect}, answer{status: 200})
	ans, err := Do[int](east, newManualClock(), Request{Method: "GET", Replayable: true, CrossTo: cross}, x)
	if err != nil || ans.Response != 200 {
		t.Fatalf("answer %d, %v", ans.Response, err)
	}
	ans.Done.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	if len(x.attempts) != 2 || x.attempts[1].Origin != "west" || x.attempts[1].Instance != "west-a:1" || !x.attempts[1].Retry {
		t.Fatalf("attempts %+v, want the retry on west", x.attempts)
	}
	if east.InFlight() != 0 || west.InFlight() != 0 {
		t.Errorf("in flight east %d west %d", east.InFlight(), west.InFlight())
	}

	// CrossTo with nothing to give (west has no instance): the retry stays.
	west.SetInstances(nil)
	x = newScripted(answer{err: errConnect}, answer{status: 200})
	ans, err = Do[int](east, newManualClock(), Request{Method: "GET", Replayable: true, CrossTo: cross}, x)
	if err != nil || ans.Response != 200 || len(x.sent) != 2 || !strings.HasPrefix(x.sent[1], "east-") || x.sent[0] == x.sent[1] {
		t.Fatalf("answer %d, %v, sent %v; want the retry on the other east instance", ans.Response, err, x.sent)
	}
	ans.Done.Done(Result{Outcome: OutcomeSuccess, Status: 200})
}

// TestDoHedgeCrossesToTheGroupsNextOrigin: with CrossTo set, the hedge
// goes to the other origin.
func TestDoHedgeCrossesToTheGroupsNextOrigin(t *testing.T) {
	east := attemptOrigin(t, func(c *OriginConfig) { c.Hedge.Delay = 50 * time.Millisecond }, "east-a:1", "east-b:1")
	west := attemptOrigin(t, nil, "west-a:1")
	west.name = "west"
	for _, in := range west.Instances() {
		in.origin = "west"
	}
	x := newScripted(answer{status: 200})
	releaseFirst := x.hold(0)
	clock := newManualClock()
	out := make(chan Answer[int], 1)
	go func() {
		ans, err := Do[int](east, clock, Request{Method: "GET", Replayable: true, CrossTo: func(*Origin) *Origin { return west }}, x)
		if err != nil {
			t.Error(err)
		}
		out <- ans
	}()
	<-clock.armed
	if first := <-x.sends; !strings.HasPrefix(first, "east-") {
		t.Fatalf("first attempt to %s", first)
	}
	clock.fire <- clock.now
	if hedge := <-x.sends; hedge != "west-a:1" {
		t.Fatalf("hedged to %s, want west-a:1", hedge)
	}
	ans := <-out
	ans.Done.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	releaseFirst()
	eventually(t, 5*time.Second, "the abandoned attempt to be reported", func() bool { return east.InFlight() == 0 })
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.attempts) < 1 || x.attempts[0].Origin != "west" || !x.attempts[0].Hedge {
		t.Fatalf("attempts %+v; want the west hedge to win", x.attempts)
	}
	if west.InFlight() != 0 {
		t.Errorf("west in flight %d", west.InFlight())
	}
}

// TestDoFirstAttemptFallsBackWhenTheOriginIsEmpty: a group's active origin
// that has just lost its instances places no attempt; the first attempt
// goes to Fallback, whatever cross_origin_retries says.
func TestDoFirstAttemptFallsBackWhenTheOriginIsEmpty(t *testing.T) {
	east := attemptOrigin(t, nil, "east-a:1")
	west := attemptOrigin(t, nil, "west-a:1")
	east.SetInstances(nil)
	x := newScripted(answer{status: 200})
	ans, err := Do[int](east, newManualClock(), Request{Method: "POST", Fallback: func(*Origin) *Origin { return west }}, x)
	if err != nil || ans.Response != 200 || len(x.sent) != 1 || x.sent[0] != "west-a:1" || x.retries != 0 {
		t.Fatalf("answer %d, %v, sent %v, retries %d", ans.Response, err, x.sent, x.retries)
	}
	ans.Done.Done(Result{Outcome: OutcomeSuccess, Status: 200})
	// Without a fallback the pick error stands.
	if _, err := Do[int](east, newManualClock(), Request{Method: "GET"}, newScripted(answer{status: 200})); !errors.Is(err, ErrNoHealthyInstances) {
		t.Fatalf("err %v, want no healthy instances", err)
	}
}

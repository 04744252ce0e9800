package origins

import (
	"slices"
)

// Pick chooses an instance for one attempt and admits it through the origin's
// concurrency cap and the instance's breaker. Instances in exclude (those already
// tried by this request) are never returned. On success the caller must report the
// attempt's end through the Ticket's Done exactly once, with its outcome, and not use
// the Ticket afterwards (see Ticket).
//
// Errors: ErrOriginConcurrency when max_concurrency is reached; ErrNoHealthyInstances
// when no instance is left to try.
//
// Selection, per the origin's lb setting:
//   - p2c: two distinct random candidates; the lower (in_flight+1) * peak_ewma / weight
//     wins (grpc-go least-request, Finagle/Linkerd peak EWMA);
//   - round_robin: the next candidate in order (for comparison experiments).
//
// Candidates are instances that are healthy and whose breaker is not open; if they are
// fewer than panic_threshold percent of all instances, every instance is a candidate
// (Envoy's panic mode), because spreading load over suspect instances beats failing
// every request.
func (o *Origin) Pick(exclude []*Instance) (*Instance, Ticket, error) {
	p := o.pol.Load()
	if n := o.inflight.Add(1); p.maxConc > 0 && n > p.maxConc {
		o.inflight.Add(-1)
		return nil, Ticket{}, ErrOriginConcurrency
	}
	in, slot, err := o.choose(p, o.snap.Load(), exclude)
	if err != nil {
		o.inflight.Add(-1)
		return nil, Ticket{}, err
	}
	o.limit.Start()
	return in, acquireTicket(o, in, slot), nil
}

// pickMode says how candidates are filtered for one pick.
type pickMode struct {
	now     int64
	panic   bool
	exclude []*Instance
}

func (m *pickMode) candidate(in *Instance) bool {
	if in.retired.Load() || slices.Contains(m.exclude, in) {
		return false
	}
	return m.panic || in.eligible(m.now)
}

func (o *Origin) choose(p *policy, s *snapshot, exclude []*Instance) (*Instance, breakerSlot, error) {
	n := len(s.list)
	if n == 0 {
		return nil, breakerSlot{}, ErrNoHealthyInstances
	}
	m := pickMode{now: o.now(), exclude: exclude}
	eligible, open := 0, 0
	for _, in := range s.list {
		if !in.eligible(m.now) {
			open++
		} else if m.candidate(in) {
			eligible++
		}
	}
	// The threshold compares healthy instances with all instances, regardless of
	// which ones this request already tried.
	if p.panicFrac > 0 && float64(n-open) < p.panicFrac*float64(n) {
		m.panic = true
		eligible = 0
		for _, in := range s.list {
			if m.candidate(in) {
				eligible++
			}
		}
	}
	if eligible == 0 {
		return nil, breakerSlot{}, ErrNoHealthyInstances
	}
	return o.balance(p, s, &m, eligible)
}

// chooseP2C tries a power-of-two-choices round; if the breaker of both choices
// refuses (half-open and saturated: the lock-free pre-check cannot see that), it
// falls back to trying every candidate from a random start.
func (o *Origin) chooseP2C(p *policy, s *snapshot, m *pickMode, eligible int) (*Instance, breakerSlot, error) {
	var a, b *Instance
	if eligible == 1 {
		a = nthCandidate(s, m, 0)
	} else {
		i := o.intN(eligible)
		j := o.intN(eligible - 1)
		if j >= i {
			j++
		}
		a, b = nthCandidate(s, m, i), nthCandidate(s, m, j)
		if o.score(p, b, m.now) < o.score(p, a, m.now) {
			a, b = b, a
		}
	}
	for _, in := range [2]*Instance{a, b} {
		if in == nil {
			continue
		}
		if d, ok := o.admit(in, m.panic); ok {
			return in, d, nil
		}
	}
	return o.scanAdmit(s, m, o.intN(len(s.list)), a, b)
}

func (o *Origin) chooseRoundRobin(s *snapshot, m *pickMode) (*Instance, breakerSlot, error) {
	// Only first attempts advance the rotation: if retries and hedges did
	// too, the rotation would fall into step with them (with two instances
	// and one dead, every first attempt would go to the dead one). They scan
	// on from the current position, skipping what the request tried.
	var next uint64
	if len(m.exclude) == 0 {
		next = o.rr.Add(1)
	} else {
		next = o.rr.Load()
	}
	return o.scanAdmit(s, m, int(next%uint64(len(s.list))), nil, nil)
}

func (o *Origin) scanAdmit(s *snapshot, m *pickMode, start int, skipA, skipB *Instance) (*Instance, breakerSlot, error) {
	n := len(s.list)
	for k := 0; k < n; k++ {
		in := s.list[(start+k)%n]
		if in == skipA || in == skipB || !m.candidate(in) {
			continue
		}
		if d, ok := o.admit(in, m.panic); ok {
			return in, d, nil
		}
	}
	return nil, breakerSlot{}, ErrNoHealthyInstances
}

// nthCandidate returns the k-th (0-based) candidate in snapshot order.
func nthCandidate(s *snapshot, m *pickMode, k int) *Instance {
	for _, in := range s.list {
		if m.candidate(in) {
			if k == 0 {
				return in
			}
			k--
		}
	}
	return nil
}

// score is the P2C load estimate: expected time to serve one more request. An
// instance with no measured latency yet and an attempt already in flight scores as
// if failing (Finagle does the same): otherwise a new or just-started instance, judged
// on the default RTT alone, could take a burst of requests before its first answer
// says how slow it is.
func (o *Origin) score(p *policy, in *Instance, now int64) float64 {
	n := in.inflight.Load()
	if n > 0 && in.ewma.seeded.Load() {
		return max(p.penalty, p.seed) * float64(n+1) / float64(in.weight.Load())
	}
	return float64(n+1) * in.ewma.get(now, p.tau) / float64(in.weight.Load())
}

// admit takes the instance's breaker slot and counts the attempt in flight. In panic
// mode a refusing breaker is bypassed: the attempt then goes unrecorded by it.
func (o *Origin) admit(in *Instance, panicMode bool) (breakerSlot, bool) {
	slot, ok := in.brk.Load().admit()
	if !ok && !panicMode {
		return breakerSlot{}, false
	}
	in.inflight.Add(1)
	if in.retired.Load() {
		// Lost a race with SetInstances: the instance left after we loaded the snapshot.
		in.inflight.Add(-1)
		in.maybeDrained()
		slot.report(errAttemptCanceled)
		return breakerSlot{}, false
	}
	return slot, true
}

func (o *Origin) finish(in *Instance, brk breakerSlot, r Result) {
	p := o.pol.Load()
	now := o.now()
	failed := r.Outcome.Failed()
	if r.Outcome != OutcomeCanceled {
		rtt := float64(r.Latency)
		if failed && rtt < p.penalty {
			rtt = p.penalty
		}
		in.ewma.observe(now, rtt, p.tau)
		in.requests.Add(1)
		if failed {
			in.failures.Add(1)
		} else {
			o.lat.record(r.Latency)
		}
		if p.outlier != nil {
			o.outliers.observe(p.outlier, in, r, now)
		}
	}
	var err error
	switch {
	case r.Outcome == OutcomeCanceled:
		err = errAttemptCanceled
	case failed:
		err = errAttemptFailed
	}
	brk.report(err)
	in.inflight.Add(-1)
	o.inflight.Add(-1)
	in.maybeDrained()
}

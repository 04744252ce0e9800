package origins

import "time"

// Failover reasons: why a member is judged unhealthy, the reason label of
// floodgate_origin_group_failovers_total (and "failback" for a return to
// an earlier member).
const (
	ReasonNoInstances         = "no_instances"          // discovery (or config) gives none
	ReasonNoEligibleInstances = "no_eligible_instances" // all unhealthy, breaker open or ejected
	ReasonBreakersOpen        = "breakers_open"         // more than max_open_breaker_fraction open
	ReasonShedding            = "shedding"              // cutoff below shed_above_score
	ReasonUnknownOrigin       = "unknown_origin"        // the origin left the registry (a reload)
	ReasonDiscovering         = "discovering"           // no answer from discovery yet
	ReasonFailback            = "failback"
	// ReasonDiscovered: an earlier member got its first instances (start-up
	// with discovery); it never failed, so no hold applies.
	ReasonDiscovered = "discovered"
)

// verdict is one member's health as the group judges it.
type verdict struct {
	healthy bool
	reason  string // why not, when unhealthy
}

// transition is a change of a group's active member.
type transition struct {
	from, to int
	reason   string
}

// failoverMachine is a group's failover decision, pure: it sees each
// member's verdict at a time and picks the active member. It fails over at
// once when the active member is unhealthy, to the first member that has
// been healthy for failbackAfter or else the first healthy one; it fails
// back to an earlier member only once that member has been healthy without
// a break for failbackAfter. With no healthy member it stays where it is.
type failoverMachine struct {
	failbackAfter time.Duration
	active        int
	started       bool
	// healthySince is when each member was last seen turn healthy; zero
	// while it is unhealthy.
	healthySince []time.Time
	// seen marks members judged at least once other than discovering.
	seen     []bool
	verdicts []verdict
	// why says in words why the active member is active.
	why string
}

func newFailoverMachine(members int, failbackAfter time.Duration) *failoverMachine {
	return &failoverMachine{failbackAfter: failbackAfter, healthySince: make([]time.Time, members), seen: make([]bool, members)}
}

// step judges the members at now. It returns the transition made, if any,
// and when a failback could next become due (zero: none pending), so the
// caller can look again then instead of polling.
func (m *failoverMachine) step(now time.Time, v []verdict) (tr *transition, wake time.Time) {
	m.verdicts = v
	fresh := make([]bool, len(v)) // first verdict after discovering
	for i, x := range v {
		if x.reason != ReasonDiscovering && !m.seen[i] {
			m.seen[i], fresh[i] = true, true
		}
		switch {
		case !x.healthy:
			m.healthySince[i] = time.Time{}
		case m.healthySince[i].IsZero():
			m.healthySince[i] = now
		}
	}
	held := func(i int) bool {
		return v[i].healthy && now.Sub(m.healthySince[i]) >= m.failbackAfter
	}
	if !m.started {
		// At start nothing has been seen fail: the first healthy member is
		// active without waiting for the hold.
		m.started = true
		m.active = 0
		for i := range v {
			if v[i].healthy {
				m.active = i
				break
			}
		}
		m.why = m.describe()
		return nil, m.nextFailback()
	}
	from := m.active
	to, reason := from, ""
	if !v[from].healthy {
		to = -1
		for i := range v { // a member that has stayed healthy first
			if i != from && held(i) {
				to = i
				break
			}
		}
		if to < 0 {
			for i := range v {
				if i != from && v[i].healthy {
					to = i
					break
				}
			}
		}
		if to < 0 {
			to = from
		}
		reason = v[from].reason
	} else {
		for i := 0; i < from; i++ {
			if held(i) {
				to, reason = i, ReasonFailback
				break
			}
			if fresh[i] && v[i].healthy {
				to, reason = i, ReasonDiscovered
				break
			}
		}
	}
	if to != from {
		m.active = to
		tr = &transition{from: from, to: to, reason: reason}
	}
	m.why = m.describe()
	return tr, m.nextFailback()
}

// nextFailback is the earliest time an earlier healthy member completes its
// hold.
func (m *failoverMachine) nextFailback() time.Time {
	var at time.Time
	for i := 0; i < m.active; i++ {
		if s := m.healthySince[i]; !s.IsZero() {
			if t := s.Add(m.failbackAfter); at.IsZero() || t.Before(at) {
				at = t
			}
		}
	}
	return at
}

// describe explains the active member; the admin view adds each member's
// verdict and when a failback is due.
func (m *failoverMachine) describe() string {
	a := m.active
	switch {
	case !m.verdicts[a].healthy:
		return "no member is healthy; staying on this one (" + m.verdicts[a].reason + ")"
	case a == 0:
		return "first in order and healthy"
	}
	for i := 0; i < a; i++ {
		if m.verdicts[i].healthy {
			return "healthy; an earlier member is healthy but not yet for failback_after"
		}
	}
	return "healthy; every earlier member is unhealthy"
}

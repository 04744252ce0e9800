package origins

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Group is an origin group at run time: its members and which of them is
// active. Requests read the active member with one atomic load; the
// registry's evaluator judges the members on events (instance set, health,
// breaker, ejection changes) and on a ticker, and publishes a new state
// when anything changed.
type Group struct {
	name  string
	state atomic.Pointer[groupState]

	// Owned by the registry's evaluator, under Registry.groupMu; requests
	// and views read state only.
	cfg     GroupConfig
	machine *failoverMachine

	mu        sync.Mutex // guards failovers, read by metrics scrapes
	failovers map[FailoverKey]uint64
}

// groupState is one published judgement of a group. Immutable.
type groupState struct {
	names    []string  // the members' names, in order
	members  []*Origin // nil: the member left the registry
	verdicts []verdict
	since    []time.Time // healthy since, per member
	active   int
	origin   *Origin // members[active]
	why      string
	// activeSince is when the active member became active.
	activeSince   time.Time
	crossRetries  bool
	failbackAfter time.Duration
}

// FailoverKey labels a failover count.
type FailoverKey struct{ From, To, Reason string }

// Name is the group's configured name.
func (g *Group) Name() string { return g.name }

// Active is the member traffic goes to now; nil only when no member is in
// the registry.
func (g *Group) Active() *Origin { return g.state.Load().origin }

// CrossTo is where a retry or hedge of a request sent to from goes when the
// group has cross_origin_retries: the first other member judged healthy,
// in order. Nil when the group does not cross or no other member is
// healthy; the retry then stays in from.
func (g *Group) CrossTo(from *Origin) *Origin {
	if !g.state.Load().crossRetries {
		return nil
	}
	return g.Next(from)
}

// Next is the first member other than from judged healthy, in order; nil
// when there is none. A request whose origin (just judged active) has no
// instance left goes there: the judgement follows the loss a moment later.
func (g *Group) Next(from *Origin) *Origin {
	s := g.state.Load()
	for i, o := range s.members {
		if o != nil && o != from && s.verdicts[i].healthy {
			return o
		}
	}
	return nil
}

// CrossOriginRetries reports whether retries and hedges may leave their
// origin.
func (g *Group) CrossOriginRetries() bool { return g.state.Load().crossRetries }

// Failovers returns the group's failover counts so far.
func (g *Group) Failovers() map[FailoverKey]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.failovers)
}

// MemberStatus is one member of a group as last judged.
type MemberStatus struct {
	Origin  string `json:"origin"`
	Active  bool   `json:"active"`
	Healthy bool   `json:"healthy"`
	// Reason says why the member is unhealthy.
	Reason       string     `json:"reason,omitempty"`
	HealthySince *time.Time `json:"healthy_since,omitempty"`
	// FailbackAt is when traffic returns to this earlier member if it
	// stays healthy until then.
	FailbackAt *time.Time `json:"failback_at,omitempty"`
}

// GroupStatus is a group's state for the admin view and metrics.
type GroupStatus struct {
	Name               string         `json:"name"`
	Active             string         `json:"active"`
	Why                string         `json:"why"`
	ActiveSince        time.Time      `json:"active_since"`
	CrossOriginRetries bool           `json:"cross_origin_retries"`
	Members            []MemberStatus `json:"members"`
}

// Status reports the group's last judgement.
func (g *Group) Status() GroupStatus {
	s := g.state.Load()
	st := GroupStatus{Name: g.name, Why: s.why, ActiveSince: s.activeSince, CrossOriginRetries: s.crossRetries}
	if s.origin != nil {
		st.Active = s.origin.name
	}
	for i := range s.members {
		m := MemberStatus{Active: i == s.active, Healthy: s.verdicts[i].healthy, Reason: s.verdicts[i].reason}
		m.Origin = s.names[i]
		if m.Healthy {
			since := s.since[i]
			m.HealthySince = &since
			if i < s.active {
				at := since.Add(s.failbackAfter)
				m.FailbackAt = &at
			}
		}
		st.Members = append(st.Members, m)
	}
	return st
}

// CutoffSource reports an origin's load-shedding cutoff (0..100; requests
// scoring above it are shed); ok is false when the origin has no shedding
// scope. The failover rule shed_above_score reads it.
type CutoffSource func(origin string) (cutoff float64, ok bool)

// SetCutoffSource connects the groups' shedding rule to the shedder.
func (r *Registry) SetCutoffSource(fn CutoffSource) {
	if fn == nil {
		r.cutoff.Store(nil)
		return
	}
	r.cutoff.Store(&fn)
	r.kickGroups()
}

// Group returns the named group.
func (r *Registry) Group(name string) (*Group, bool) {
	g, ok := (*r.groups.Load())[name]
	return g, ok
}

// GroupNames lists the groups, sorted.
func (r *Registry) GroupNames() []string { return slices.Sorted(maps.Keys(*r.groups.Load())) }

// SetGroups applies the origin groups of a configuration, against the
// origins in the registry (call it after Update). A group whose members are
// unchanged keeps its state (its active member and how long each member
// has been healthy). An invalid list changes nothing.
func (r *Registry) SetGroups(cfgs []GroupConfig) error {
	known := map[string]OriginConfig{}
	for name, o := range *r.origins.Load() {
		known[name] = o.Config()
	}
	if err := ValidateGroups(cfgs, known); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.groupMu.Lock()
	cur := *r.groups.Load()
	next := make(map[string]*Group, len(cfgs))
	for _, c := range cfgs {
		g := cur[c.Name]
		if g == nil || !slices.Equal(g.cfg.Origins, c.Origins) {
			g = &Group{name: c.Name, failovers: map[FailoverKey]uint64{}, machine: newFailoverMachine(len(c.Origins), c.Failover.FailbackAfter)}
		}
		g.cfg = c
		g.machine.failbackAfter = c.Failover.FailbackAfter
		next[c.Name] = g
	}
	r.groups.Store(&next)
	r.evaluateGroupsLocked(time.Now())
	r.groupMu.Unlock()
	switch {
	case len(next) == 0:
		r.groupTask.stop()
	case r.groupTask.cancel == nil:
		r.groupTask = startTask("groups", r.runGroups)
	}
	return nil
}

// kickGroups asks the evaluator to judge the groups now; it never blocks
// (it runs inside breaker callbacks).
func (r *Registry) kickGroups() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// runGroups judges the groups on every kick, at each group's
// check_interval, and when a failback falls due.
func (r *Registry) runGroups(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		r.groupMu.Lock()
		wake := r.evaluateGroupsLocked(time.Now())
		r.groupMu.Unlock()
		t.Reset(max(time.Until(wake), time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
	}
}

// evaluateGroupsLocked judges every group at now and returns when to look
// again.
func (r *Registry) evaluateGroupsLocked(now time.Time) (wake time.Time) {
	wake = now.Add(time.Hour)
	for _, g := range *r.groups.Load() {
		if w := r.evaluateGroup(g, now); w.Before(wake) {
			wake = w
		}
	}
	return wake
}

func (r *Registry) evaluateGroup(g *Group, now time.Time) (wake time.Time) {
	c := g.cfg
	members := make([]*Origin, len(c.Origins))
	v := make([]verdict, len(c.Origins))
	for i, name := range c.Origins {
		o, _ := r.Get(name)
		members[i] = o
		v[i] = r.judge(o, c.Failover)
	}
	prev := g.state.Load()
	tr, failback := g.machine.step(now, v)
	s := &groupState{
		names: c.Origins, members: members, verdicts: v, since: slices.Clone(g.machine.healthySince),
		active: g.machine.active, origin: members[g.machine.active], why: g.machine.why,
		crossRetries: c.CrossOriginRetries, failbackAfter: c.Failover.FailbackAfter, activeSince: now,
	}
	if prev != nil && tr == nil {
		s.activeSince = prev.activeSince
	}
	g.state.Store(s)
	if tr != nil {
		from, to := c.Origins[tr.from], c.Origins[tr.to]
		g.mu.Lock()
		g.failovers[FailoverKey{From: from, To: to, Reason: tr.reason}]++
		g.mu.Unlock()
		r.opts.Logger.Warn("origin group failed over", "group", g.name, "from", from, "to", to, "reason", tr.reason)
		if h := r.opts.Hooks.OnFailover; h != nil {
			h(g.name, from, to, tr.reason)
		}
	}
	wake = now.Add(c.Failover.CheckInterval)
	if !failback.IsZero() && failback.Before(wake) {
		wake = failback
	}
	return wake
}

// judge is the failover verdict on one member.
func (r *Registry) judge(o *Origin, f FailoverConfig) verdict {
	if o == nil {
		return verdict{reason: ReasonUnknownOrigin}
	}
	select {
	case <-o.Ready():
	default:
		return verdict{reason: ReasonDiscovering}
	}
	if reason := o.failoverVerdict(o.now(), f.MaxOpenBreakerFraction); reason != "" {
		return verdict{reason: reason}
	}
	if f.ShedAboveScore > 0 {
		if src := r.cutoff.Load(); src != nil {
			if cutoff, ok := (*src)(o.name); ok && cutoff < f.ShedAboveScore {
				return verdict{reason: ReasonShedding}
			}
		}
	}
	return verdict{healthy: true}
}

// failoverVerdict says why the origin is not healthy enough to take a
// group's traffic, or "". It reads the same lock-free state the picker
// does. A breaker whose open period is over counts as closed: with traffic
// failed over, nothing else would ever probe it.
func (o *Origin) failoverVerdict(now int64, maxOpenFraction float64) string {
	list := o.snap.Load().list
	if len(list) == 0 {
		return ReasonNoInstances
	}
	eligible, open := 0, 0
	for _, in := range list {
		if in.eligible(now) {
			eligible++
		}
		if in.brk.Load().isOpen(now) {
			open++
		}
	}
	switch {
	case eligible == 0:
		return ReasonNoEligibleInstances
	case float64(open) > maxOpenFraction*float64(len(list)):
		return ReasonBreakersOpen
	}
	return ""
}

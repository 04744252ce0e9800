package origins

import (
	"testing"
	"time"
)

var (
	up   = verdict{healthy: true}
	down = verdict{reason: ReasonNoEligibleInstances}
)

// machineAt steps m at t0+at and returns the transition.
func stepAt(m *failoverMachine, t0 time.Time, at time.Duration, v ...verdict) *transition {
	tr, _ := m.step(t0.Add(at), v)
	return tr
}

func TestFailoverMachineFailsOverAtOnceAndFailsBackAfterTheHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newFailoverMachine(2, 30*time.Second)
	if tr := stepAt(m, t0, 0, up, up); tr != nil || m.active != 0 {
		t.Fatalf("start: active %d, transition %v", m.active, tr)
	}
	tr := stepAt(m, t0, time.Second, down, up)
	if tr == nil || *tr != (transition{0, 1, ReasonNoEligibleInstances}) || m.active != 1 {
		t.Fatalf("primary down: transition %v, active %d", tr, m.active)
	}
	// The primary recovers at 10s; every look before 40s keeps the secondary.
	stepAt(m, t0, 10*time.Second, up, up)
	_, wake := m.step(t0.Add(20*time.Second), []verdict{up, up})
	if want := t0.Add(40 * time.Second); !wake.Equal(want) {
		t.Errorf("failback wake %v, want %v", wake, want)
	}
	if tr := stepAt(m, t0, 40*time.Second-time.Nanosecond, up, up); tr != nil {
		t.Fatalf("failed back before the hold: %v", tr)
	}
	tr = stepAt(m, t0, 40*time.Second, up, up)
	if tr == nil || *tr != (transition{1, 0, ReasonFailback}) {
		t.Fatalf("at the hold: transition %v, want failback to 0", tr)
	}
	if _, wake := m.step(t0.Add(41*time.Second), []verdict{up, up}); !wake.IsZero() {
		t.Errorf("failback pending on the primary: %v", wake)
	}
}

func TestFailoverMachineFlappingPrimaryRestartsTheHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newFailoverMachine(2, 30*time.Second)
	stepAt(m, t0, 0, up, up)
	stepAt(m, t0, time.Second, down, up)
	// Healthy at 2s, down again at 25s, healthy at 26s: the hold counts from 26s.
	stepAt(m, t0, 2*time.Second, up, up)
	stepAt(m, t0, 25*time.Second, down, up)
	stepAt(m, t0, 26*time.Second, up, up)
	if tr := stepAt(m, t0, 50*time.Second, up, up); tr != nil {
		t.Fatalf("failed back 24s into the second healthy spell: %v", tr)
	}
	if tr := stepAt(m, t0, 56*time.Second, up, up); tr == nil || tr.to != 0 {
		t.Fatalf("no failback 30s into the healthy spell: %v", tr)
	}
}

func TestFailoverMachineOrderAndNoHealthyMember(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newFailoverMachine(3, 10*time.Second)
	// Starting with the first member down: the second is active at once.
	if stepAt(m, t0, 0, down, up, up); m.active != 1 {
		t.Fatalf("start active %d, want 1", m.active)
	}
	// Everything down: stay.
	if tr := stepAt(m, t0, time.Second, down, down, down); tr != nil || m.active != 1 {
		t.Fatalf("all down: %v, active %d", tr, m.active)
	}
	if m.why == "" || m.describe() != m.why {
		t.Errorf("why %q", m.why)
	}
	// The first comes back just now, the third has been... also just now: order decides.
	if tr := stepAt(m, t0, 2*time.Second, up, down, up); tr == nil || tr.to != 0 {
		t.Fatalf("active down, 0 and 2 healthy: %v", tr)
	}
	// Active 0 fails; 2 has been healthy for the hold, 1 only just: 2 wins.
	stepAt(m, t0, 3*time.Second, up, down, up)
	stepAt(m, t0, 12*time.Second, up, up, up)
	if tr := stepAt(m, t0, 13*time.Second, down, up, up); tr == nil || tr.to != 2 {
		t.Fatalf("want failover to the member healthy for the hold (2), got %v", tr)
	}
	// 1 completes its hold first: failback goes to 1, not all the way to 0.
	stepAt(m, t0, 14*time.Second, up, up, up)
	if tr := stepAt(m, t0, 22*time.Second, up, up, up); tr == nil || tr.to != 1 {
		t.Fatalf("want failback to 1 (held since 12s), got %v", tr)
	}
	if tr := stepAt(m, t0, 24*time.Second, up, up, up); tr == nil || tr.to != 0 {
		t.Fatalf("want failback to 0 (held since 14s), got %v", tr)
	}
}

func TestFailoverMachineZeroHoldFailsBackAtOnce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newFailoverMachine(2, 0)
	stepAt(m, t0, 0, up, up)
	stepAt(m, t0, time.Second, down, up)
	if tr := stepAt(m, t0, 2*time.Second, up, up); tr == nil || tr.to != 0 {
		t.Fatalf("failback_after 0: %v", tr)
	}
}

// A member still waiting for discovery's first answer is not failed: when
// it turns up healthy, traffic moves to it without the hold.
func TestFailoverMachineDiscoveredMemberNeedsNoHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := newFailoverMachine(2, time.Hour)
	discovering := verdict{reason: ReasonDiscovering}
	if stepAt(m, t0, 0, discovering, up); m.active != 1 {
		t.Fatalf("active %d while the primary is discovering", m.active)
	}
	if tr := stepAt(m, t0, time.Second, discovering, up); tr != nil {
		t.Fatalf("moved while discovering: %v", tr)
	}
	tr := stepAt(m, t0, 2*time.Second, up, up)
	if tr == nil || *tr != (transition{1, 0, ReasonDiscovered}) {
		t.Fatalf("primary discovered healthy: %v", tr)
	}
	// From then on it is a member like any other: a failure and a return
	// wait for the hold.
	stepAt(m, t0, 3*time.Second, down, up)
	if tr := stepAt(m, t0, 4*time.Second, up, up); tr != nil {
		t.Fatalf("failed back without the hold: %v", tr)
	}
	// Discovered empty (not healthy) at first: no shortcut later.
	m = newFailoverMachine(2, time.Hour)
	stepAt(m, t0, 0, discovering, up)
	stepAt(m, t0, time.Second, verdict{reason: ReasonNoInstances}, up)
	if tr := stepAt(m, t0, 2*time.Second, up, up); tr != nil {
		t.Fatalf("a member first seen empty skipped the hold: %v", tr)
	}
}

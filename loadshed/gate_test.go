package loadshed

import (
	"testing"
	"time"
)

// waitQueued blocks until n requests wait in g (the waiters are goroutines;
// this is the event the test synchronises on).
func waitQueued(t *testing.T, g *gate, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, q := g.load(); q == n {
			return
		}
		if time.Now().After(deadline) {
			_, q := g.load()
			t.Fatalf("%d waiting, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// With the limit reached, freed slots go to the most critical waiter first
// (oldest first within a score), whatever the arrival order.
func TestGateGrantsByPriority(t *testing.T) {
	g := &gate{}
	g.setLimit(1, 0, false)
	if !g.acquire(50, time.Minute, probeWaits{}, 10) {
		t.Fatal("first request refused below the limit")
	}
	order := make(chan int, 4)
	for i, score := range []int{90, 10, 50, 10} {
		go func() {
			if g.acquire(score, time.Minute, probeWaits{}, 10) {
				order <- score
			}
		}()
		waitQueued(t, g, i+1)
	}
	var got []int
	for range 4 {
		g.release()
		got = append(got, <-order)
	}
	g.release()
	if want := []int{10, 10, 50, 90}; !equalInts(got, want) {
		t.Fatalf("grant order %v, want %v", got, want)
	}
	if h, q := g.load(); h != 0 || q != 0 {
		t.Fatalf("held %d queued %d after all released", h, q)
	}
}

// A full queue refuses the least critical: a newcomer no better than the
// worst waiter is refused at once; a better one evicts the worst.
func TestGateFullQueueRefusesLeastCritical(t *testing.T) {
	g := &gate{}
	g.setLimit(1, 0, false)
	g.acquire(50, time.Minute, probeWaits{}, 1)
	evicted := make(chan bool, 1)
	go func() { evicted <- g.acquire(80, time.Minute, probeWaits{}, 1) }()
	waitQueued(t, g, 1)
	if g.acquire(80, time.Minute, probeWaits{}, 1) {
		t.Fatal("an equally unimportant newcomer got into a full queue")
	}
	admitted := make(chan bool, 1)
	go func() { admitted <- g.acquire(20, time.Minute, probeWaits{}, 1) }()
	if ok := <-evicted; ok {
		t.Fatal("the score-80 waiter was not evicted for a score-20 one")
	}
	g.release()
	if !<-admitted {
		t.Fatal("the score-20 request was not admitted")
	}
	g.release()
}

// Waiting longer than max wait is a refusal; score 0 never waits and is
// never refused; an open gate (no limit learned) admits everything.
func TestGateTimeoutAndScoreZero(t *testing.T) {
	g := &gate{}
	g.setLimit(1, 0, false)
	g.acquire(50, time.Minute, probeWaits{}, 10)
	if g.acquire(60, time.Millisecond, probeWaits{}, 10) {
		t.Fatal("admitted past the limit without a free slot")
	}
	if !g.acquire(0, time.Millisecond, probeWaits{}, 0) {
		t.Fatal("score 0 refused")
	}
	if h, q := g.load(); h != 2 || q != 0 {
		t.Fatalf("held %d queued %d", h, q)
	}
	g.setLimit(0, 0, false)
	for range 5 {
		if !g.acquire(100, 0, probeWaits{}, 0) {
			t.Fatal("an open gate refused")
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tryAcquire admits exactly what acquire admits without a queue, and
// counts it as held; anything that would have to wait is left to acquire.
func TestGateTryAcquireTakesOnlyFreeSlots(t *testing.T) {
	g := &gate{}
	if !g.tryAcquire(50) {
		t.Fatal("open gate refused")
	}
	g.setLimit(2, 0, false)
	if !g.tryAcquire(50) {
		t.Fatal("refused below the limit")
	}
	if g.tryAcquire(50) {
		t.Fatal("admitted at the limit")
	}
	if !g.tryAcquire(0) {
		t.Fatal("score 0 refused at the limit")
	}
	if held, queued := g.load(); held != 3 || queued != 0 {
		t.Fatalf("held %d, queued %d; want 3 held, none queued", held, queued)
	}
	g.release()
	g.release()
	if !g.tryAcquire(50) {
		t.Fatal("refused after slots were released")
	}
}

// Slots past the proven concurrency go to requests that can be spared: a
// critical request waits for a tested slot (one under the proven level
// while the limit probes past it), and while it waits nobody passes it,
// so the next answer frees one for it.
func TestGateKeepsCriticalRequestsOffUntestedSlots(t *testing.T) {
	g := &gate{}
	g.setLimit(4, 3, false)
	for range 2 {
		if !g.tryAcquire(10) {
			t.Fatal("critical request refused under the proven concurrency")
		}
	}
	if g.tryAcquire(10) {
		t.Fatal("a critical request took the proven level's slot while the limit probes past it")
	}
	// With nobody waiting, a request that can be spared takes it.
	if !g.tryAcquire(probeMinScore) {
		t.Fatal("a request scored probeMinScore was not admitted under the limit")
	}
	g.release()
	critical := make(chan bool, 1)
	go func() { critical <- g.acquire(10, time.Minute, probeWaits{time.Minute, time.Minute}, 10) }()
	waitQueued(t, g, 1)
	// 2 held, the limit 4: slots are free, but a request that can be
	// spared does not pass the critical one waiting for a tested slot.
	if g.tryAcquire(probeMinScore) {
		t.Fatal("a less critical request passed a waiting critical one")
	}
	low := make(chan bool, 1)
	go func() { low <- g.acquire(probeMinScore, time.Minute, probeWaits{time.Minute, time.Minute}, 10) }()
	waitQueued(t, g, 2)
	select {
	case <-critical:
		t.Fatal("the critical request was granted an untested slot")
	default:
	}
	// An answer frees a tested slot: the critical request takes it, and
	// the less critical one a slot behind it.
	g.release()
	if !<-critical {
		t.Fatal("the critical request was refused")
	}
	if !<-low {
		t.Fatal("the less critical request was refused")
	}
	if h, q := g.load(); h != 3 || q != 0 {
		t.Fatalf("held %d queued %d, want 3 held, none waiting", h, q)
	}
	for range 3 {
		g.release()
	}
	// Once the proven concurrency reaches the limit, scores do not matter.
	g.setLimit(3, 3, false)
	for range 3 {
		if !g.tryAcquire(10) {
			t.Fatal("critical request refused below a limit that is proven")
		}
	}
}

// The protection is bounded: a critical request that waited its probe
// wait for a tested slot takes an untested one under the limit; at the
// limit it goes on waiting, first in line, until its full wait.
func TestGateCriticalRequestTakesUntestedSlotAfterItsProbeWait(t *testing.T) {
	g := &gate{}
	g.setLimit(3, 2, false)
	if !g.tryAcquire(10) {
		t.Fatal("critical request refused under the proven concurrency")
	}
	if !g.acquire(10, time.Minute, probeWaits{time.Millisecond, time.Millisecond}, 10) {
		t.Fatal("a critical request past its probe wait was refused below the limit")
	}
	if !g.tryAcquire(probeMinScore) {
		t.Fatal("a less critical request was refused below the limit")
	}
	// At the limit it waits on past its probe wait, and is granted the
	// next slot ahead of a less critical request.
	critical := make(chan bool, 1)
	go func() { critical <- g.acquire(10, time.Minute, probeWaits{time.Millisecond, time.Millisecond}, 10) }()
	waitQueued(t, g, 1)
	low := make(chan bool, 1)
	go func() {
		low <- g.acquire(probeMinScore, time.Minute, probeWaits{time.Millisecond, time.Millisecond}, 10)
	}()
	waitQueued(t, g, 2)
	g.release()
	if !<-critical {
		t.Fatal("the critical request was refused")
	}
	select {
	case <-low:
		t.Fatal("the less critical request was granted before the critical one")
	default:
	}
	g.release()
	if !<-low {
		t.Fatal("the less critical request was refused")
	}
	// Its whole wait is still bounded.
	if g.acquire(10, 5*time.Millisecond, probeWaits{time.Millisecond, time.Millisecond}, 10) {
		t.Fatal("a critical request was admitted past the limit")
	}
	if h, q := g.load(); h != 3 || q != 0 {
		t.Fatalf("held %d queued %d, want 3 held, none waiting", h, q)
	}
}

// At an origin that refuses, a critical request waits the longer probe
// wait for a tested slot, also when the origin starts refusing while it
// waits. (Nothing can be awaited here: the assertion is that nothing
// happens for a while past the shorter wait.)
func TestGateHoldsCriticalRequestsLongerAtAnOriginThatRefuses(t *testing.T) {
	waits := probeWaits{unknown: 100 * time.Millisecond, refusing: time.Minute}
	for _, refusesFromStart := range []bool{true, false} {
		g := &gate{}
		g.setLimit(2, 1, refusesFromStart)
		if !g.tryAcquire(10) {
			t.Fatal("critical request refused below the proven concurrency")
		}
		critical := make(chan bool, 1)
		go func() { critical <- g.acquire(10, time.Minute, waits, 10) }()
		waitQueued(t, g, 1)
		if !refusesFromStart {
			g.setLimit(2, 1, true) // the origin's first refusal, well within the shorter wait
		}
		time.Sleep(3 * waits.unknown)
		if h, q := g.load(); h != 1 || q != 1 {
			t.Fatalf("refusing from the start %v: held %d queued %d past the shorter probe wait, want the critical request still waiting for a tested slot", refusesFromStart, h, q)
		}
		g.release()
		if !<-critical {
			t.Fatal("the critical request was refused a tested slot")
		}
		g.release()
	}
}

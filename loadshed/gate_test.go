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
	g.setLimit(1)
	if !g.acquire(50, time.Minute, 10) {
		t.Fatal("first request refused below the limit")
	}
	order := make(chan int, 4)
	for i, score := range []int{90, 10, 50, 10} {
		go func() {
			if g.acquire(score, time.Minute, 10) {
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
	g.setLimit(1)
	g.acquire(50, time.Minute, 1)
	evicted := make(chan bool, 1)
	go func() { evicted <- g.acquire(80, time.Minute, 1) }()
	waitQueued(t, g, 1)
	if g.acquire(80, time.Minute, 1) {
		t.Fatal("an equally unimportant newcomer got into a full queue")
	}
	admitted := make(chan bool, 1)
	go func() { admitted <- g.acquire(20, time.Minute, 1) }()
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
	g.setLimit(1)
	g.acquire(50, time.Minute, 10)
	if g.acquire(60, time.Millisecond, 10) {
		t.Fatal("admitted past the limit without a free slot")
	}
	if !g.acquire(0, time.Millisecond, 0) {
		t.Fatal("score 0 refused")
	}
	if h, q := g.load(); h != 2 || q != 0 {
		t.Fatalf("held %d queued %d", h, q)
	}
	g.setLimit(0)
	for range 5 {
		if !g.acquire(100, 0, 0) {
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
	g.setLimit(2)
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

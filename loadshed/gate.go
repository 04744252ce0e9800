package loadshed

import (
	"sort"
	"sync"
	"time"
)

// gate is an origin scope's enforcing limiter: it admits at most the
// origin's learned limit of requests awaiting response headers, and holds
// the excess briefly in a queue ordered by score, so when the limit is the
// bottleneck the most critical waiting request goes next and the least
// critical one is refused (queue full, or waited too long). The limit
// comes from the concurrency source on every tick; with none the gate is
// open. The learned limit is the algorithm (origins.LimitAlgorithm); this
// is the part that enforces it, by priority.
type gate struct {
	mu      sync.Mutex
	held    int
	limit   int // 0: open
	seq     uint64
	waiters []*waiter // sorted best first: lowest score, then oldest
}

type waiter struct {
	score int
	seq   uint64
	ch    chan bool // buffered: granted (true) or evicted (false)
}

// tryAcquire admits a request of the given score if it needs no queue:
// the gate is open, below its limit, or the score is 0. It is acquire's
// first step, for callers that would otherwise take the lock a second
// time just to size the queue of a request that needs none.
func (g *gate) tryAcquire(score int) bool {
	g.mu.Lock()
	ok := g.limit <= 0 || g.held < g.limit || score <= 0
	if ok {
		g.held++
	}
	g.mu.Unlock()
	return ok
}

// acquire admits a request of the given score, waiting up to maxWait in a
// queue of at most maxQueue. Score 0 is never queued or refused.
func (g *gate) acquire(score int, maxWait time.Duration, maxQueue int) bool {
	g.mu.Lock()
	if g.limit <= 0 || g.held < g.limit || score <= 0 {
		g.held++
		g.mu.Unlock()
		return true
	}
	if maxQueue <= 0 || maxWait <= 0 {
		g.mu.Unlock()
		return false
	}
	if len(g.waiters) >= maxQueue {
		worst := g.waiters[len(g.waiters)-1]
		if worst.score <= score {
			g.mu.Unlock()
			return false // the newcomer is no more important than anyone waiting
		}
		g.waiters = g.waiters[:len(g.waiters)-1]
		worst.ch <- false
	}
	g.seq++
	w := &waiter{score: score, seq: g.seq, ch: make(chan bool, 1)}
	i := sort.Search(len(g.waiters), func(i int) bool { return g.waiters[i].score > score })
	g.waiters = append(g.waiters, nil)
	copy(g.waiters[i+1:], g.waiters[i:])
	g.waiters[i] = w
	g.mu.Unlock()

	t := time.NewTimer(maxWait)
	defer t.Stop()
	select {
	case ok := <-w.ch:
		return ok
	case <-t.C:
	}
	g.mu.Lock()
	for i, x := range g.waiters {
		if x == w {
			g.waiters = append(g.waiters[:i], g.waiters[i+1:]...)
			g.mu.Unlock()
			return false
		}
	}
	g.mu.Unlock()
	// Granted or evicted while the timer fired.
	return <-w.ch
}

// release frees a slot and hands it to the best waiter.
func (g *gate) release() {
	g.mu.Lock()
	g.held--
	g.grantLocked()
	g.mu.Unlock()
}

// setLimit installs the current learned limit (0 opens the gate).
func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = n
	g.grantLocked()
	g.mu.Unlock()
}

func (g *gate) grantLocked() {
	for len(g.waiters) > 0 && (g.limit <= 0 || g.held < g.limit) {
		w := g.waiters[0]
		g.waiters = g.waiters[1:]
		g.held++
		w.ch <- true
	}
}

// load is the admitted and the queued count.
func (g *gate) load() (held, queued int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, len(g.waiters)
}

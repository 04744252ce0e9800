package loadshed

import (
	"slices"
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
	mu    sync.Mutex
	held  int
	limit int // 0: open
	// proven is the most requests the origin has had at once without
	// refusing (0: not known). Slots past it are untested: only requests
	// scored probeMinScore or more take them, so if the origin refuses
	// there, a request that can be spared is the one refused; a more
	// critical one waits for a tested slot (see capFor).
	proven int
	// refuses: the origin has refused past its capacity lately, so a
	// critical request waits the longer of its probe waits.
	refuses bool
	seq     uint64
	waiters []*waiter // sorted best first: lowest score, then oldest
}

// probeMinScore is the least score that may take a slot the origin has
// not yet served without refusing. It matches global.min_cutoff's default
// and the taxonomy's midpoint (default_score 50): the critical and
// important bands below it wait for a tested slot instead.
const probeMinScore = 50

// probeWaits are how long a request scored under probeMinScore waits for
// a tested slot before any slot under the limit will do: unknown at an
// origin not known to refuse, refusing at one that is (including one that
// starts refusing while the request waits).
type probeWaits struct{ unknown, refusing time.Duration }

// capFor is how many requests may be held when one is admitted: the
// limit, or for one that may not take an untested slot the proven
// concurrency if that is lower.
func (g *gate) capFor(untested bool) int {
	if !untested && g.proven > 0 && g.proven < g.limit {
		// One under the proven level while the limit probes past it:
		// requests admitted together reach the origin in any order, so a
		// critical request admitted at the proven level can arrive after
		// the probing one and be the one refused.
		return max(1, g.proven-1)
	}
	return g.limit
}

// admits tells whether a request of the given score needs no queue. A
// request never passes one already waiting: while a critical request
// waits for a tested slot, the untested ones are not handed out either,
// so it waits only for the next answer (or its probe wait).
func (g *gate) admits(score int) bool {
	return g.limit <= 0 || score <= 0 || len(g.waiters) == 0 && g.held < g.capFor(score >= probeMinScore)
}

type waiter struct {
	score int
	seq   uint64
	ch    chan bool // buffered: granted (true) or evicted (false)
	// untested: it may take a slot past the proven concurrency (its score
	// is probeMinScore or more, or it waited out its probe wait).
	untested bool
}

// tryAcquire admits a request of the given score if it needs no queue:
// the gate is open, below its limit, or the score is 0. It is acquire's
// first step, for callers that would otherwise take the lock a second
// time just to size the queue of a request that needs none.
func (g *gate) tryAcquire(score int) bool {
	g.mu.Lock()
	ok := g.admits(score)
	if ok {
		g.held++
	}
	g.mu.Unlock()
	return ok
}

// acquire admits a request of the given score, waiting up to maxWait in a
// queue of at most maxQueue. Score 0 is never queued or refused. A request
// scored under probeMinScore waits at most its probe wait (see
// probeWaits) for a slot the origin has served without refusing, then for
// any slot under the limit: the protection costs a critical request that
// much latency at most, where a queueing origin's limit climbs past
// anything proven at a spike's onset.
func (g *gate) acquire(score int, maxWait time.Duration, pw probeWaits, maxQueue int) bool {
	g.mu.Lock()
	if g.admits(score) {
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
	w := &waiter{score: score, seq: g.seq, ch: make(chan bool, 1), untested: score >= probeMinScore}
	i := sort.Search(len(g.waiters), func(i int) bool { return g.waiters[i].score > score })
	g.waiters = append(g.waiters, nil)
	copy(g.waiters[i+1:], g.waiters[i:])
	g.waiters[i] = w
	probe := pw.unknown
	if g.refuses {
		probe = pw.refusing
	}
	g.mu.Unlock()

	start := time.Now()
	left := func(d time.Duration) time.Duration { return max(0, min(d, maxWait)-time.Since(start)) }
	wait := maxWait
	if !w.untested {
		wait = min(probe, maxWait)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case ok := <-w.ch:
			return ok
		case <-t.C:
		}
		g.mu.Lock()
		i := slices.Index(g.waiters, w)
		if i < 0 {
			g.mu.Unlock()
			// Granted or evicted while the timer fired.
			return <-w.ch
		}
		if !w.untested {
			if g.refuses && probe < pw.refusing {
				// The origin started refusing while this request waited:
				// it waits on for a tested slot as at a refusing origin.
				probe = pw.refusing
				if d := left(probe); d > 0 {
					g.mu.Unlock()
					t.Reset(d)
					continue
				}
			}
			// Its probe wait is over: any slot under the limit will do.
			w.untested = true
			g.grantLocked()
			g.mu.Unlock()
			t.Reset(left(maxWait))
			continue
		}
		g.waiters = slices.Delete(g.waiters, i, i+1)
		g.mu.Unlock()
		return false
	}
}

// release frees a slot and hands it to the best waiter.
func (g *gate) release() {
	g.mu.Lock()
	g.held--
	g.grantLocked()
	g.mu.Unlock()
}

// setLimit installs the current learned limit (0 opens the gate), the
// proven concurrency (0: not known) and whether the origin refuses.
func (g *gate) setLimit(n, proven int, refuses bool) {
	g.mu.Lock()
	g.limit, g.proven, g.refuses = n, proven, refuses
	g.grantLocked()
	g.mu.Unlock()
}

// grantLocked hands free slots to waiters, best first. It stops at a
// waiter that may not take an untested slot, rather than give that slot
// to a less critical one behind it (see admits).
func (g *gate) grantLocked() {
	for len(g.waiters) > 0 {
		w := g.waiters[0]
		if g.limit > 0 && g.held >= g.capFor(w.untested) {
			return
		}
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

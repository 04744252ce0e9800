package ratelimit

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// concSpec is a concurrency policy's effective settings.
type concSpec struct {
	ConcurrencyPolicy
	key KeySpec
}

// ConcurrencyTable counts one concurrency policy's requests in flight per
// key: in this process for a local policy, in Redis for a redis policy
// (with this process's counts as the fallback while Redis fails).
type ConcurrencyTable struct {
	l      *Limiters
	name   string
	spec   atomic.Pointer[concSpec]
	shards [numShards]concShard

	// inFlight is the slots held through this table right now, locally
	// or in Redis.
	inFlight  atomic.Int64
	admitted  atomic.Uint64
	rejected  atomic.Uint64
	fallbacks atomic.Uint64
}

type concShard struct {
	mu sync.Mutex
	m  map[string]int
}

// Admission is the outcome of one Acquire.
type Admission struct {
	Policy  string
	Allowed bool
	// Max is the policy's limit; InFlight the requests in flight for the
	// key after this one was admitted (or when it was rejected).
	Max      int
	InFlight int
	// RetryAfter is a hint for a rejected client: when the oldest slot's
	// lease runs out in Redis, otherwise zero (unknown).
	RetryAfter time.Duration
	// Backend is where the slot was counted: local or redis.
	Backend string
	// Fallback says a redis policy counted locally because Redis failed.
	Fallback bool
}

// Permit is a slot held by one admitted request. Release it exactly when
// the request is complete, on every path; a second Release does nothing.
type Permit struct {
	t        *ConcurrencyTable
	key      string // the local map key, when held locally
	local    bool
	lease    *redisLease
	backend  *redisBackend
	released atomic.Bool
}

func newConcurrencyTable(l *Limiters, sp *concSpec) *ConcurrencyTable {
	t := &ConcurrencyTable{l: l, name: sp.Name}
	for i := range t.shards {
		t.shards[i].m = map[string]int{}
	}
	t.spec.Store(sp)
	return t
}

// configureConcurrency installs the concurrency policies; one that keeps
// its name and key keeps its counts. Call with updateMu held.
func (l *Limiters) configureConcurrency(policies []ConcurrencyPolicy) {
	old := *l.concurrency.Load()
	next := make(map[string]*ConcurrencyTable, len(policies))
	for _, p := range policies {
		p = p.WithDefaults()
		sp := &concSpec{ConcurrencyPolicy: p, key: compileKey(p.Key, p.IPv6Prefix)}
		if t, ok := old[p.Name]; ok && t.spec.Load().key.equal(sp.key) {
			t.spec.Store(sp)
			next[p.Name] = t
			continue
		}
		next[p.Name] = newConcurrencyTable(l, sp)
	}
	l.concurrency.Store(&next)
}

// Concurrency returns the table of the concurrency policy named name, or
// nil when there is none.
func (l *Limiters) Concurrency(name string) *ConcurrencyTable {
	return (*l.concurrency.Load())[name]
}

// KeySpec returns what identifies a key in t.
func (t *ConcurrencyTable) KeySpec() *KeySpec { return &t.spec.Load().key }

// Acquire takes a slot for key, or rejects the request when key already
// has Max in flight. The permit is nil when rejected.
func (t *ConcurrencyTable) Acquire(key []byte) (*Permit, Admission) {
	sp := t.spec.Load()
	if sp.Backend == BackendRedis {
		if rb := t.l.redis.Load(); rb != nil {
			rkey, holder, res, err := rb.acquire(t.name, sp, key)
			if err == nil {
				a := Admission{Policy: t.name, Allowed: res[0] == 1, Max: sp.Max, InFlight: int(res[1]), Backend: BackendRedis}
				if !a.Allowed {
					a.RetryAfter = time.Duration(res[2]) * time.Millisecond
					t.rejected.Add(1)
					return nil, a
				}
				l := &redisLease{key: rkey, holder: holder, lease: sp.Lease, renewed: time.Now()}
				rb.renewer.add(l)
				t.admitted.Add(1)
				t.inFlight.Add(1)
				return &Permit{t: t, lease: l, backend: rb}, a
			}
		}
		t.fallbacks.Add(1)
		return t.acquireLocal(key, sp, true)
	}
	return t.acquireLocal(key, sp, false)
}

func (t *ConcurrencyTable) acquireLocal(key []byte, sp *concSpec, fallback bool) (*Permit, Admission) {
	sh := &t.shards[maphash.Bytes(t.l.seed, key)%numShards]
	a := Admission{Policy: t.name, Max: sp.Max, Backend: BackendLocal, Fallback: fallback}
	sh.mu.Lock()
	n := sh.m[string(key)]
	if n >= sp.Max {
		sh.mu.Unlock()
		a.InFlight = n
		t.rejected.Add(1)
		return nil, a
	}
	k := string(key)
	sh.m[k] = n + 1
	sh.mu.Unlock()
	a.Allowed, a.InFlight = true, n+1
	t.admitted.Add(1)
	t.inFlight.Add(1)
	return &Permit{t: t, key: k, local: true}, a
}

// Release gives the slot back. Safe to call more than once and on a nil
// permit. A Redis slot whose release fails expires with its lease.
func (p *Permit) Release() {
	if p == nil || !p.released.CompareAndSwap(false, true) {
		return
	}
	p.t.inFlight.Add(-1)
	if !p.local {
		p.backend.renewer.remove(p.lease)
		_ = p.backend.release(p.lease.key, p.lease.holder)
		return
	}
	sh := &p.t.shards[maphash.String(p.t.l.seed, p.key)%numShards]
	sh.mu.Lock()
	if n := sh.m[p.key]; n <= 1 {
		delete(sh.m, p.key)
	} else {
		sh.m[p.key] = n - 1
	}
	sh.mu.Unlock()
}

// ConcurrencyStats is one concurrency policy's state.
type ConcurrencyStats struct {
	Name    string `json:"name"`
	Backend string `json:"backend"`
	Max     int    `json:"max"`
	// InFlight is the slots this process holds now.
	InFlight int64 `json:"in_flight"`
	// Counters since the policy was created.
	Admitted  uint64 `json:"admitted"`
	Rejected  uint64 `json:"rejected"`
	Fallbacks uint64 `json:"fallbacks"`
}

// ConcurrencyStats returns every concurrency policy's state, sorted by
// name.
func (l *Limiters) ConcurrencyStats() []ConcurrencyStats {
	m := *l.concurrency.Load()
	out := make([]ConcurrencyStats, 0, len(m))
	for _, t := range m {
		sp := t.spec.Load()
		out = append(out, ConcurrencyStats{
			Name: t.name, Backend: sp.Backend, Max: sp.Max, InFlight: t.inFlight.Load(),
			Admitted: t.admitted.Load(), Rejected: t.rejected.Load(), Fallbacks: t.fallbacks.Load(),
		})
	}
	slices.SortFunc(out, func(a, b ConcurrencyStats) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ConcurrencyNames lists the installed concurrency policies, sorted.
func (l *Limiters) ConcurrencyNames() []string { return sortedNames(*l.concurrency.Load()) }

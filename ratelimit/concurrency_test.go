package ratelimit

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/redistest"
)

func TestConcurrencyPolicyValidate(t *testing.T) {
	err := Config{Concurrency: []ConcurrencyPolicy{
		{Name: "a", Max: 1},
		{Name: "a", Max: 0, Key: []string{"cookie"}, Backend: "memcached", Lease: time.Millisecond},
		{Name: "r", Max: 1, Backend: BackendRedis},
	}, Redis: RedisConfig{Addrs: []string{"nohost"}, KeyPrefix: "a{b", Cluster: true, DB: 2}}.Validate()
	for _, want := range []string{
		`concurrency[1].name: "a" is already defined by concurrency[0]`,
		"concurrency[1].max: must be a positive number",
		`concurrency[1].key[0]: unknown key part "cookie"`,
		`concurrency[1].backend: unknown backend "memcached"`,
		"concurrency[1].lease: must be at least 300ms",
		`redis.addrs[0]: want host:port, got "nohost"`,
		"redis.key_prefix: must not contain { or }",
		"redis.db: Redis Cluster has only database 0",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := (Config{Concurrency: []ConcurrencyPolicy{{Name: "r", Max: 1, Backend: BackendRedis}}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "concurrency[0].backend: redis needs rate_limit.redis.addrs") {
		t.Fatalf("redis backend without addrs: %v", err)
	}
}

func TestLocalConcurrencyLimit(t *testing.T) {
	l := redisLimiters(t, RedisConfig{}, nil, ConcurrencyPolicy{Name: "c", Max: 2})
	tb := l.Concurrency("c")
	p1, a1 := tb.Acquire([]byte("k"))
	p2, a2 := tb.Acquire([]byte("k"))
	p3, a3 := tb.Acquire([]byte("k"))
	if !a1.Allowed || !a2.Allowed || a2.InFlight != 2 || a3.Allowed || p3 != nil || a3.InFlight != 2 {
		t.Fatalf("admissions %+v %+v %+v", a1, a2, a3)
	}
	if _, a := tb.Acquire([]byte("other")); !a.Allowed {
		t.Fatal("another key limited")
	}
	p1.Release()
	p1.Release() // idempotent
	if _, a := tb.Acquire([]byte("k")); !a.Allowed {
		t.Fatal("released slot not reusable")
	}
	p2.Release()
	var nilPermit *Permit
	nilPermit.Release()
	st := l.ConcurrencyStats()[0]
	if st.InFlight != 2 || st.Admitted != 4 || st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLocalConcurrencyKeepsCountsAcrossReload(t *testing.T) {
	l := redisLimiters(t, RedisConfig{}, nil, ConcurrencyPolicy{Name: "c", Max: 2})
	p, _ := l.Concurrency("c").Acquire([]byte("k"))
	if err := l.Configure(Config{Concurrency: []ConcurrencyPolicy{{Name: "c", Max: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, a := l.Concurrency("c").Acquire([]byte("k")); a.Allowed {
		t.Fatal("reload forgot the request in flight")
	}
	p.Release()
	if _, a := l.Concurrency("c").Acquire([]byte("k")); !a.Allowed {
		t.Fatal("slot released on the old table not seen by the new one")
	}
}

// TestConcurrencyNeverExceeded hammers one key from many goroutines over
// two Limiters sharing Redis and checks the in-flight count never passes
// the limit.
func TestConcurrencyNeverExceeded(t *testing.T) {
	srv := redistest.Start(t)
	rc := RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second}
	cp := ConcurrencyPolicy{Name: "c", Max: 3, Backend: BackendRedis}
	fleet := []*Limiters{redisLimiters(t, rc, nil, cp), redisLimiters(t, rc, nil, cp)}
	var inFlight, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for _, l := range fleet {
		for range 8 {
			wg.Go(func() {
				for range 40 {
					p, a := l.Concurrency("c").Acquire([]byte("k"))
					if a.Fallback {
						t.Error("fallback to local")
					}
					if !a.Allowed {
						continue
					}
					admitted.Add(1)
					n := inFlight.Add(1)
					for {
						pk := peak.Load()
						if n <= pk || peak.CompareAndSwap(pk, n) {
							break
						}
					}
					time.Sleep(time.Millisecond) // the request's work
					inFlight.Add(-1)
					p.Release()
				}
			})
		}
	}
	wg.Wait()
	t.Logf("admitted %d, peak in flight %d", admitted.Load(), peak.Load())
	if peak.Load() > 3 {
		t.Fatalf("peak in flight %d, limit 3", peak.Load())
	}
	if admitted.Load() < 10 {
		t.Fatalf("only %d admitted", admitted.Load())
	}
}

// TestRedisConcurrencyLeaseRecovery: a gateway that dies holding slots
// (here: its Limiters closed without releasing, so nothing renews) gives
// them back within the lease; a live one keeps them past it by renewing.
func TestRedisConcurrencyLeaseRecovery(t *testing.T) {
	srv := redistest.Start(t)
	const lease = 600 * time.Millisecond
	rc := RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second}
	cp := ConcurrencyPolicy{Name: "c", Max: 2, Backend: BackendRedis, Lease: lease}
	live := redisLimiters(t, rc, nil, cp)
	dying := New(Options{SweepInterval: -1})
	if err := dying.Configure(Config{Concurrency: []ConcurrencyPolicy{cp}, Redis: rc}); err != nil {
		t.Fatal(err)
	}
	held, a := live.Concurrency("c").Acquire([]byte("k"))
	if !a.Allowed || a.Backend != BackendRedis {
		t.Fatalf("live acquire %+v", a)
	}
	if _, a := dying.Concurrency("c").Acquire([]byte("k")); !a.Allowed {
		t.Fatalf("dying acquire %+v", a)
	}
	crashed := time.Now()
	dying.Close() // stops renewing; the slot is never released
	if _, a := live.Concurrency("c").Acquire([]byte("k")); a.Allowed || a.RetryAfter <= 0 || a.RetryAfter > lease {
		t.Fatalf("third slot while two are held: %+v", a)
	}
	var back time.Duration
	for {
		p, a := live.Concurrency("c").Acquire([]byte("k"))
		if a.Allowed {
			back = time.Since(crashed)
			p.Release()
			break
		}
		if time.Since(crashed) > 5*lease {
			t.Fatal("the dead holder's slot never came back")
		}
		time.Sleep(10 * time.Millisecond) // pacing the retry loop
	}
	t.Logf("dead holder's slot back after %v (lease %v)", back, lease)
	if back > lease+200*time.Millisecond {
		t.Fatalf("slot back after %v, lease %v", back, lease)
	}
	// The live holder has renewed past its lease: it still holds its
	// slot, so only one more fits.
	p, a := live.Concurrency("c").Acquire([]byte("k"))
	if !a.Allowed || a.InFlight != 2 {
		t.Fatalf("after 1+ lease: %+v (the live slot was not renewed)", a)
	}
	if _, a := live.Concurrency("c").Acquire([]byte("k")); a.Allowed {
		t.Fatal("limit exceeded")
	}
	p.Release()
	held.Release()
	n, err := srv.Client(t).ZCard(t.Context(), "floodgate:cc:c:{6b}").Result()
	if err != nil || n != 0 {
		t.Fatalf("%d holders left after releases (%v)", n, err)
	}
}

func TestRedisConcurrencyFallsBackToLocalCounts(t *testing.T) {
	srv := redistest.Start(t)
	l := redisLimiters(t, RedisConfig{Addrs: []string{srv.Addr}, Breaker: BreakerConfig{Failures: 1, OpenFor: time.Hour}}, nil,
		ConcurrencyPolicy{Name: "c", Max: 2, Backend: BackendRedis})
	held, _ := l.Concurrency("c").Acquire([]byte("k"))
	srv.Kill()
	var permits []*Permit
	admitted := 0
	for range 5 {
		p, a := l.Concurrency("c").Acquire([]byte("k"))
		if !a.Fallback {
			t.Fatalf("admission %+v, want a local fallback", a)
		}
		if a.Allowed {
			admitted++
			permits = append(permits, p)
		}
	}
	if admitted != 2 {
		t.Fatalf("%d admitted locally, want max 2", admitted)
	}
	held.Release() // fails against the dead Redis: expires with its lease
	for _, p := range permits {
		p.Release()
	}
	if st := l.ConcurrencyStats()[0]; st.InFlight != 0 || st.Fallbacks != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSnapshotForTheAdminAPI(t *testing.T) {
	l := redisLimiters(t, RedisConfig{}, []Policy{{Name: "p", Rate: 1}}, ConcurrencyPolicy{Name: "c", Max: 1})
	l.Allow("p", []byte("k"))
	s := l.Snapshot()
	if len(s.Policies) != 1 || s.Policies[0].Admitted != 1 || s.Policies[0].Backend != BackendLocal ||
		len(s.Concurrency) != 1 || s.Concurrency[0].Max != 1 || s.Redis.Configured {
		t.Fatalf("snapshot %+v", s)
	}
	if b, _ := BreakerOpen.MarshalText(); string(b) != "open" {
		t.Fatalf("breaker state text %q", b)
	}
}

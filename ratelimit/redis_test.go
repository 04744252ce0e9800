package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/redistest"
)

// redisLimiters returns Limiters with the given policies on a Redis at
// addrs, closed at cleanup.
func redisLimiters(t *testing.T, rc RedisConfig, policies []Policy, conc ...ConcurrencyPolicy) *Limiters {
	t.Helper()
	l := New(Options{SweepInterval: -1})
	t.Cleanup(l.Close)
	if err := l.Configure(Config{Policies: policies, Concurrency: conc, Redis: rc}); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRedisDecisionsMatchLocalBucket(t *testing.T) {
	srv := redistest.Start(t)
	// A slow refill (one token per 10 s) so the few milliseconds the
	// test takes cannot add a token.
	p := Policy{Name: "p", Rate: 0.1, Burst: 5, Backend: BackendRedis}
	rl := redisLimiters(t, RedisConfig{Addrs: []string{srv.Addr}}, []Policy{p})
	local := p
	local.Backend = ""
	ll := redisLimiters(t, RedisConfig{}, []Policy{local})
	for i := range 7 {
		rd, _ := rl.Allow("p", []byte("client"))
		ld, _ := ll.Allow("p", []byte("client"))
		if rd.Backend != BackendRedis || rd.Fallback {
			t.Fatalf("request %d decided by %s (fallback %v)", i, rd.Backend, rd.Fallback)
		}
		if rd.Allowed != ld.Allowed || rd.Limit != ld.Limit || rd.Remaining != ld.Remaining {
			t.Fatalf("request %d: redis %+v, local %+v", i, rd, ld)
		}
		// Durations differ by the time between the two calls only (a
		// token takes 10 s, so half a second of slack still tells a wrong
		// token count apart).
		for _, pair := range [][2]time.Duration{{rd.Reset, ld.Reset}, {rd.RetryAfter, ld.RetryAfter}} {
			if d := pair[0] - pair[1]; d < -500*time.Millisecond || d > 500*time.Millisecond {
				t.Fatalf("request %d: redis %+v, local %+v", i, rd, ld)
			}
		}
	}
	// After 5 admissions and 2 rejections: empty, one token in 10 s,
	// full in 50 s.
	d, _ := rl.Allow("p", []byte("client"))
	if d.Allowed || d.RetryAfter < 9*time.Second || d.RetryAfter > 10*time.Second || d.Reset < 49*time.Second {
		t.Fatalf("rejection quota %+v", d)
	}
	if st := rl.Stats()[0]; st.Admitted != 5 || st.Rejected != 3 || st.Keys != 0 || st.Fallbacks != 0 {
		t.Fatalf("stats %+v (a redis decision must not create a local bucket)", st)
	}
}

func TestRedisKeysHavePrefixHashTagAndExpiry(t *testing.T) {
	srv := redistest.Start(t)
	rl := redisLimiters(t, RedisConfig{Addrs: []string{srv.Addr}, KeyPrefix: "fg-test:"},
		[]Policy{{Name: "api", Rate: 10, Burst: 20, IdleTimeout: 3 * time.Second, Backend: BackendRedis}})
	rl.Allow("api", []byte{1, 2, '}'})
	cl := srv.Client(t)
	ctx := context.Background()
	keys, err := cl.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "fg-test:rl:api:{01027d}" {
		t.Fatalf("keys %q, want one key fg-test:rl:api:{01027d}", keys)
	}
	// The key lives for the idle timeout (3 s), which is longer than the
	// 0.1 s the bucket needs to refill.
	ttl, err := cl.PTTL(ctx, keys[0]).Result()
	if err != nil || ttl <= 2*time.Second || ttl > 3*time.Second {
		t.Fatalf("TTL %v (%v), want the 3s idle timeout", ttl, err)
	}
	// Drained far below full, the key lives until it would be full again.
	for range 20 {
		rl.Allow("api", []byte("x"))
	}
	ttl, _ = cl.PTTL(ctx, "fg-test:rl:api:{78}").Result()
	if ttl < 1500*time.Millisecond {
		// 20 tokens at 10/s: full again in 2 s, more than the idle 3 s? no: 2 s < 3 s,
		// so the idle timeout still wins.
		t.Fatalf("drained key TTL %v", ttl)
	}
}

// TestRedisFleetAdmissionAccuracy runs two Limiters (two gateways) on one
// Redis key, offering well above the limit for a second, and compares the
// admissions with rate*window + burst.
func TestRedisFleetAdmissionAccuracy(t *testing.T) {
	srv := redistest.Start(t)
	p := []Policy{{Name: "p", Rate: 200, Burst: 20, Backend: BackendRedis}}
	// A generous timeout: this test is about accuracy, and a decision
	// that times out on a busy machine would be made locally.
	rc := RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second}
	fleet := []*Limiters{redisLimiters(t, rc, p), redisLimiters(t, rc, p)}
	admitted := fleetOffer(t, fleet, "p", time.Second, 4)
	checkAdmitted(t, admitted, 200, 20)
}

// fleetOffer has workers goroutines per Limiters decide for one key as
// fast as they can for window; it returns admissions and the measured
// window.
func fleetOffer(t *testing.T, fleet []*Limiters, policy string, window time.Duration, workers int) admissions {
	t.Helper()
	var admitted, total, fallbacks atomic.Int64
	var first, last atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, l := range fleet {
		for range workers {
			wg.Go(func() {
				for time.Since(start) < window {
					d, ok := l.Allow(policy, []byte("one-client"))
					if !ok {
						t.Error("policy missing")
						return
					}
					now := time.Now().UnixNano()
					first.CompareAndSwap(0, now)
					last.Store(now)
					total.Add(1)
					if d.Fallback {
						fallbacks.Add(1)
					}
					if d.Allowed {
						admitted.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	return admissions{admitted: admitted.Load(), total: total.Load(), fallbacks: fallbacks.Load(),
		window: time.Duration(last.Load() - first.Load())}
}

type admissions struct {
	admitted, total, fallbacks int64
	window                     time.Duration
}

func checkAdmitted(t *testing.T, a admissions, rate float64, burst int) {
	t.Helper()
	want := rate*a.window.Seconds() + float64(burst)
	errPct := 100 * (float64(a.admitted) - want) / want
	offered := float64(a.total) / a.window.Seconds()
	t.Logf("window %v, offered %.0f/s, admitted %d, want %.1f (error %+.2f%%), fallbacks %d", a.window, offered, a.admitted, want, errPct, a.fallbacks)
	if a.fallbacks > 0 {
		t.Fatalf("%d decisions fell back to local buckets", a.fallbacks)
	}
	if offered < 1.5*rate {
		t.Skipf("machine too slow to offer 1.5x the limit (%.0f/s)", offered)
	}
	// Loose bounds for a shared 2-core machine; the experiment holds 2 %.
	// Over-admission is the limiter's fault. Admitting less also happens
	// when the whole process stalls for longer than burst/rate (the
	// bucket overflows meanwhile), so only a gross shortfall fails, such
	// as decisions charged twice.
	if errPct > 5 || errPct < -15 {
		t.Fatalf("admitted %d, want %.1f within +5%%/-15%%", a.admitted, want)
	}
}

// TestRedisCluster runs the cluster cases on one three-master cluster
// (starting one takes a few seconds).
func TestRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	t.Run("SpreadsKeysAndDecidesPerKey", func(t *testing.T) { clusterSpreadsKeys(t, cluster) })
	t.Run("FleetAdmissionAccuracy", func(t *testing.T) {
		p := []Policy{{Name: "fleet", Rate: 200, Burst: 20, Backend: BackendRedis}}
		rc := RedisConfig{Addrs: cluster.Addrs(), Cluster: true, Timeout: time.Second}
		fleet := []*Limiters{redisLimiters(t, rc, p), redisLimiters(t, rc, p)}
		checkAdmitted(t, fleetOffer(t, fleet, "fleet", time.Second, 4), 200, 20)
	})
	t.Run("Concurrency", func(t *testing.T) {
		l := redisLimiters(t, RedisConfig{Addrs: cluster.Addrs(), Cluster: true, Timeout: time.Second}, nil,
			ConcurrencyPolicy{Name: "c", Max: 1, Backend: BackendRedis})
		for i := range 20 {
			key := fmt.Appendf(nil, "k%d", i)
			p, a := l.Concurrency("c").Acquire(key)
			if !a.Allowed || a.Backend != BackendRedis {
				t.Fatalf("key %d: %+v", i, a)
			}
			if _, a := l.Concurrency("c").Acquire(key); a.Allowed {
				t.Fatalf("key %d: second slot", i)
			}
			p.Release()
		}
	})
}

func clusterSpreadsKeys(t *testing.T, cluster *redistest.Cluster) {
	rl := redisLimiters(t, RedisConfig{Addrs: cluster.Addrs()[:1], Cluster: true, KeyPrefix: "spread:"},
		[]Policy{{Name: "p", Rate: 0.1, Burst: 3, Backend: BackendRedis}})
	const clients = 30
	for c := range clients {
		key := fmt.Appendf(nil, "client-%d", c)
		for i := range 4 {
			d, _ := rl.Allow("p", key)
			if d.Fallback || d.Allowed != (i < 3) {
				t.Fatalf("client %d request %d: %+v", c, i, d)
			}
		}
	}
	// Every node holds some of the keys: the hash tag spreads clients.
	ctx := context.Background()
	total := 0
	for _, n := range cluster.Nodes {
		keys, err := n.Client(t).Keys(ctx, "spread:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Errorf("node %s holds no keys", n.Addr)
		}
		total += len(keys)
	}
	if total != clients {
		t.Fatalf("%d keys in the cluster, want %d", total, clients)
	}
}

// TestRedisDownFallsBackToLocalBuckets: with nothing listening, every
// decision is local: the key's own bucket, never unlimited, never a
// blanket rejection; the breaker opens and stops trying.
func TestRedisDownFallsBackToLocalBuckets(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	l := New(Options{SweepInterval: -1, Logger: logs.logger()})
	defer l.Close()
	err = l.Configure(Config{
		Policies: []Policy{{Name: "p", Rate: 0.1, Burst: 4, Backend: BackendRedis}},
		Redis:    RedisConfig{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Breaker: BreakerConfig{Failures: 3, OpenFor: time.Hour}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "b"} {
		admitted := 0
		for range 10 {
			d, _ := l.Allow("p", []byte(key))
			if !d.Fallback || d.Backend != BackendLocal {
				t.Fatalf("decision %+v, want a local fallback", d)
			}
			if d.Allowed {
				admitted++
			}
		}
		if admitted != 4 {
			t.Fatalf("key %s: %d of 10 admitted, want the local burst 4", key, admitted)
		}
	}
	rs := l.RedisStats()
	if rs.Breaker != BreakerOpen || rs.Errors != 3 {
		t.Fatalf("redis stats %+v: want the breaker open after 3 errors and no calls after", rs)
	}
	if st := l.Stats()[0]; st.Fallbacks != 20 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "deciding with local limits") || !strings.Contains(logs.String(), "redis rate-limit call failed") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// TestRedisHangFallsBackWithinOneTimeoutAndRecovers pauses Redis (requests
// go unanswered), checks a decision waits one timeout and then decides
// locally, then resumes Redis and checks the breaker's probe brings back
// Redis decisions without any restart.
func TestRedisHangFallsBackWithinOneTimeoutAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 100 * time.Millisecond
	l := redisLimiters(t, RedisConfig{Addrs: []string{srv.Addr}, Timeout: timeout, Breaker: BreakerConfig{Failures: 2, OpenFor: 300 * time.Millisecond}},
		[]Policy{{Name: "p", Rate: 1000, Burst: 1000, Backend: BackendRedis}})
	if d, _ := l.Allow("p", []byte("k")); d.Backend != BackendRedis {
		t.Fatalf("first decision %+v", d)
	}
	srv.Pause()
	for i := range 2 {
		start := time.Now()
		d, _ := l.Allow("p", []byte("k"))
		took := time.Since(start)
		if !d.Fallback || !d.Allowed {
			t.Fatalf("decision %d during the hang: %+v", i, d)
		}
		if took < timeout/2 || took > 20*timeout {
			t.Fatalf("decision %d took %v, want about the %v timeout", i, took, timeout)
		}
	}
	// Open: decisions no longer wait.
	start := time.Now()
	for range 100 {
		if d, _ := l.Allow("p", []byte("k")); !d.Fallback {
			t.Fatalf("decision with the breaker open: %+v", d)
		}
	}
	// Waiting a timeout each would take 10 s; a busy machine may add a
	// scheduling hiccup, so the bound is a tenth of that.
	if took := time.Since(start); took > 10*timeout {
		t.Fatalf("100 decisions with the breaker open took %v: they waited for Redis", took)
	}
	if l.RedisStats().Breaker != BreakerOpen {
		t.Fatalf("breaker %v", l.RedisStats().Breaker)
	}
	srv.Resume()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _ := l.Allow("p", []byte("k"))
		if d.Backend == BackendRedis {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis decisions did not resume: %+v, breaker %v", d, l.RedisStats().Breaker)
		}
		time.Sleep(20 * time.Millisecond) // pacing the probe loop, not synchronisation
	}
	if l.RedisStats().Breaker != BreakerClosed {
		t.Fatalf("breaker %v after recovery", l.RedisStats().Breaker)
	}
}

func TestRedisKilledAndRestartedResumesGlobalLimits(t *testing.T) {
	srv := redistest.Start(t)
	l := redisLimiters(t, RedisConfig{Addrs: []string{srv.Addr}, Breaker: BreakerConfig{Failures: 1, OpenFor: 200 * time.Millisecond}},
		[]Policy{{Name: "p", Rate: 0.1, Burst: 2, Backend: BackendRedis}})
	l.Allow("p", []byte("k"))
	srv.Kill()
	if d, _ := l.Allow("p", []byte("k")); !d.Fallback || !d.Allowed {
		t.Fatalf("with Redis dead: %+v", d)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _ := l.Allow("p", []byte("k2"))
		if d.Backend == BackendRedis {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Redis decision after the restart: %+v", d)
		}
		time.Sleep(20 * time.Millisecond) // pacing the probe loop
	}
}

func TestReconfigureRedisConnection(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	p := []Policy{{Name: "p", Rate: 0.1, Burst: 1, Backend: BackendRedis}}
	l := redisLimiters(t, RedisConfig{Addrs: []string{a.Addr}}, p)
	if d, _ := l.Allow("p", []byte("k")); !d.Allowed || d.Backend != BackendRedis {
		t.Fatal(d)
	}
	if err := l.Configure(Config{Policies: p, Redis: RedisConfig{Addrs: []string{b.Addr}}}); err != nil {
		t.Fatal(err)
	}
	// A fresh Redis: a fresh bucket.
	if d, _ := l.Allow("p", []byte("k")); !d.Allowed || d.Backend != BackendRedis {
		t.Fatal(d)
	}
	if n, _ := b.Client(t).DBSize(context.Background()).Result(); n != 1 {
		t.Fatalf("new Redis holds %d keys", n)
	}
	// Removing the connection is invalid while a policy uses it.
	if err := l.Configure(Config{Policies: p}); err == nil || !strings.Contains(err.Error(), "policies[0].backend: redis needs rate_limit.redis.addrs") {
		t.Fatalf("error %v", err)
	}
}

package ratelimit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// offer drives n requests for key at the given offered rate over window,
// with arrivals jittered by up to jitter of a period, and returns how many
// were admitted.
func offer(t *testing.T, l *Limiters, clk *fakeClock, policy, key string, offered float64, window time.Duration, jitter float64, rng *rand.Rand) int {
	t.Helper()
	period := time.Duration(float64(time.Second) / offered)
	n := int(window / period)
	admitted := 0
	start := clk.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * period)
		if jitter > 0 {
			at = at.Add(time.Duration((rng.Float64() - 0.5) * jitter * float64(period)))
		}
		if d := at.Sub(clk.Now()); d > 0 {
			clk.Advance(d)
		}
		d, ok := l.Allow(policy, []byte(key))
		if !ok {
			t.Fatal("policy missing")
		}
		if d.Allowed {
			admitted++
		}
	}
	return admitted
}

func TestAccuracyInjectedClock(t *testing.T) {
	cases := []struct {
		rate    float64
		burst   int
		offered float64
		jitter  float64
	}{
		{rate: 100, burst: 20, offered: 250},
		{rate: 37.5, burst: 5, offered: 80, jitter: 0.9},
		{rate: 1000, burst: 100, offered: 1500, jitter: 0.5},
		{rate: 12.5, burst: 3, offered: 40, jitter: 0.9},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("rate=%v/burst=%d/offered=%v", tc.rate, tc.burst, tc.offered), func(t *testing.T) {
			clk := newFakeClock()
			l := newTestLimiters(clk, Policy{Name: "p", Rate: tc.rate, Burst: tc.burst})
			defer l.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			got := offer(t, l, clk, "p", "client", tc.offered, 10*time.Second, tc.jitter, rng)
			want := tc.rate*10 + float64(tc.burst)
			errPct := 100 * math.Abs(float64(got)-want) / want
			t.Logf("admitted %d, want %.0f (error %.2f%%)", got, want, errPct)
			if errPct > 2 {
				t.Fatalf("admitted %d, want %.0f within 2%% (error %.2f%%)", got, want, errPct)
			}
		})
	}
}

func TestIdleKeysExpire(t *testing.T) {
	clk := newFakeClock()
	l := newTestLimiters(clk, Policy{Name: "p", Rate: 10, Burst: 5, MaxKeys: 200_000, IdleTimeout: time.Minute})
	defer l.Close()
	const n = 100_000
	var key []byte
	for i := range n {
		key = fmt.Appendf(key[:0], "client-%d", i)
		if d, _ := l.Allow("p", key); !d.Allowed {
			t.Fatalf("fresh key %d rejected", i)
		}
	}
	if got := l.Stats()[0].Keys; got != n {
		t.Fatalf("tracked %d keys, want %d", got, n)
	}
	full := heapAlloc()
	clk.Advance(30 * time.Second)
	// One key stays busy and drained: it must survive the sweep.
	for range 10 {
		l.Allow("p", []byte("client-7"))
	}
	if dropped := l.Sweep(); dropped != 0 {
		t.Fatalf("dropped %d keys before the idle timeout", dropped)
	}
	clk.Advance(31 * time.Second)
	dropped := l.Sweep()
	if dropped != n-1 {
		t.Fatalf("dropped %d keys, want %d (all but the busy one)", dropped, n-1)
	}
	if got := l.Stats()[0].Keys; got != 1 {
		t.Fatalf("tracked %d keys after sweep, want 1", got)
	}
	// The memory is really returned: Sweep also rebuilds emptied shard
	// maps, which Go never shrinks by itself.
	after := heapAlloc()
	t.Logf("heap with %d keys %.1f MB, after expiry %.1f MB", n, full/1e6, after/1e6)
	if after > full/4 {
		t.Fatalf("heap %.1f MB after expiry, %.1f MB with %d keys", after/1e6, full/1e6, n)
	}
	clk.Advance(2 * time.Minute)
	if l.Sweep() != 1 || l.Stats()[0].Keys != 0 {
		t.Fatalf("the last key was not dropped once idle and refilled")
	}
}

func heapAlloc() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc)
}

func TestDrainedBucketIsNotDroppedUntilRefilled(t *testing.T) {
	clk := newFakeClock()
	// 0.01/s with burst 3 takes 300 s to refill.
	l := newTestLimiters(clk, Policy{Name: "p", Rate: 0.01, Burst: 3, IdleTimeout: time.Second})
	defer l.Close()
	for range 3 {
		l.Allow("p", []byte("k"))
	}
	clk.Advance(10 * time.Second)
	if l.Sweep() != 0 {
		t.Fatal("a drained bucket was dropped: the client would get a full bucket back")
	}
	if d, _ := l.Allow("p", []byte("k")); d.Allowed {
		t.Fatal("drained key admitted")
	}
	clk.Advance(301 * time.Second)
	if l.Sweep() != 1 {
		t.Fatal("refilled idle bucket was kept")
	}
}

func TestMaxKeysOverflowBucket(t *testing.T) {
	clk := newFakeClock()
	l := newTestLimiters(clk, Policy{Name: "p", Rate: 1, Burst: 2, MaxKeys: 3, OverflowRate: 1, OverflowBurst: 4, IdleTimeout: time.Second})
	defer l.Close()
	for i := range 3 {
		d, _ := l.Allow("p", fmt.Appendf(nil, "k%d", i))
		if !d.Allowed || d.Overflow {
			t.Fatalf("key %d: %+v", i, d)
		}
	}
	// Every new key now shares one overflow bucket of 4 tokens.
	admitted := 0
	for i := range 10 {
		d, _ := l.Allow("p", fmt.Appendf(nil, "new%d", i))
		if !d.Overflow {
			t.Fatalf("new key %d tracked past the cap: %+v", i, d)
		}
		if d.Allowed {
			admitted++
		}
	}
	if admitted != 4 {
		t.Fatalf("overflow admitted %d, want its burst 4", admitted)
	}
	// Tracked keys keep their own buckets.
	if d, _ := l.Allow("p", []byte("k0")); !d.Allowed || d.Overflow || d.Remaining != 0 {
		t.Fatalf("tracked key affected by overflow: %+v", d)
	}
	st := l.Stats()[0]
	if st.Keys != 3 || st.Overflowed != 10 || st.OverflowRejected != 6 {
		t.Fatalf("stats %+v", st)
	}
	// Once idle buckets expire there is room again.
	clk.Advance(5 * time.Second)
	if l.Sweep() != 3 {
		t.Fatal("sweep did not free the table")
	}
	if d, _ := l.Allow("p", []byte("new0")); d.Overflow || !d.Allowed {
		t.Fatalf("new key still overflowing after sweep: %+v", d)
	}
}

func TestUpdateKeepsTokensWhenRateChanges(t *testing.T) {
	clk := newFakeClock()
	l := newTestLimiters(clk, Policy{Name: "p", Rate: 10, Burst: 10})
	defer l.Close()
	key := []byte("k")
	for i := range 10 {
		if d, _ := l.Allow("p", key); !d.Allowed {
			t.Fatalf("request %d rejected", i)
		}
	}
	// Raise the rate: the drained bucket must stay drained, not refill.
	if err := l.Update([]Policy{{Name: "p", Rate: 100, Burst: 10}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := l.Allow("p", key); d.Allowed {
		t.Fatal("rate change refilled the bucket")
	}
	// 50 ms at the new rate is 5 tokens (at the old rate it would be 0.5).
	clk.Advance(50 * time.Millisecond)
	admitted := 0
	for range 10 {
		if d, _ := l.Allow("p", key); d.Allowed {
			admitted++
		}
	}
	if admitted != 5 {
		t.Fatalf("admitted %d after 50ms at the new rate, want 5", admitted)
	}
	// Lower the burst and the rate: tokens are kept but capped by the burst.
	clk.Advance(time.Second)
	if err := l.Update([]Policy{{Name: "p", Rate: 1, Burst: 3}}); err != nil {
		t.Fatal(err)
	}
	d, _ := l.Allow("p", key)
	if !d.Allowed || d.Limit != 3 || d.Remaining != 2 {
		t.Fatalf("after burst change: %+v", d)
	}
	if l.Stats()[0].Keys != 1 {
		t.Fatal("bucket lost on update")
	}
}

func TestUpdateKeyChangeAndRemoval(t *testing.T) {
	clk := newFakeClock()
	l := newTestLimiters(clk, Policy{Name: "p", Rate: 1, Burst: 1}, Policy{Name: "q", Rate: 1, Burst: 1})
	defer l.Close()
	l.Allow("p", []byte("k"))
	if err := l.Update([]Policy{{Name: "p", Rate: 1, Burst: 1, Key: []string{"route"}}}); err != nil {
		t.Fatal(err)
	}
	if l.Stats()[0].Keys != 0 {
		t.Fatal("buckets kept although the key changed meaning")
	}
	if _, ok := l.Allow("q", []byte("k")); ok || l.Has("q") {
		t.Fatal("removed policy still installed")
	}
	if err := l.Update([]Policy{{Name: "p", Rate: -1}}); err == nil {
		t.Fatal("invalid update accepted")
	} else if !l.Has("p") {
		t.Fatal("invalid update replaced the running policies")
	}
}

func TestRejectionQuota(t *testing.T) {
	clk := newFakeClock()
	var rejected atomic.Int64
	l := New(Options{Now: clk.Now, SweepInterval: -1, OnReject: func(p string) {
		if p == "p" {
			rejected.Add(1)
		}
	}})
	defer l.Close()
	if err := l.Update([]Policy{{Name: "p", Rate: 0.5, Burst: 2}}); err != nil {
		t.Fatal(err)
	}
	d1, _ := l.Allow("p", []byte("k"))
	if !d1.Allowed || d1.Limit != 2 || d1.Remaining != 1 || d1.Reset != 2*time.Second {
		t.Fatalf("first: %+v", d1)
	}
	l.Allow("p", []byte("k"))
	d3, _ := l.Allow("p", []byte("k"))
	if d3.Allowed || d3.Remaining != 0 || d3.RetryAfter != 2*time.Second || d3.Reset != 4*time.Second {
		t.Fatalf("third: %+v", d3)
	}
	if rejected.Load() != 1 {
		t.Fatalf("OnReject called %d times, want 1", rejected.Load())
	}
}

func TestJanitorDropsIdleBuckets(t *testing.T) {
	l := New(Options{SweepInterval: 5 * time.Millisecond})
	defer l.Close()
	if err := l.Update([]Policy{{Name: "p", Rate: 1000, Burst: 1, IdleTimeout: 20 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		l.Allow("p", fmt.Appendf(nil, "k%d", i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats()[0].Keys != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %d keys", l.Stats()[0].Keys)
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.Close() // idempotent with the deferred Close
}

func TestConcurrentAllowAndUpdate(t *testing.T) {
	l := New(Options{SweepInterval: time.Millisecond})
	defer l.Close()
	if err := l.Update([]Policy{{Name: "p", Rate: 1e6, Burst: 10, MaxKeys: 500, IdleTimeout: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				l.Allow("p", fmt.Appendf(nil, "g%d-%d", g, i%700))
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if err := l.Update([]Policy{{Name: "p", Rate: float64(1e6 + i), Burst: 10 + i%3, MaxKeys: 500, IdleTimeout: time.Millisecond}}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if k := l.Stats()[0].Keys; k > 500 || k < 0 {
		t.Fatalf("tracked %d keys, cap 500", k)
	}
}

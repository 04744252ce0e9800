package ratelimit

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/redistest"
)

// TestRedisDecisionLatencyExperiment measures what a Redis-backed decision
// adds on loopback at 5,000 decisions/s (target: p99 <= 1 ms), against a
// bare PING on the same connection pool and the local bucket, at the same
// rate. The decision and the PING alternate in one-second slices, so a
// stall of the machine (another process, the hypervisor) falls on both
// alike and the difference of their tails is the decision's own. Opt-in:
//
//	FLOODGATE_EXPERIMENT=1 [FLOODGATE_EXPERIMENT_SECONDS=10] go test ./ratelimit -run LatencyExperiment -v -count=1
func TestRedisDecisionLatencyExperiment(t *testing.T) {
	if os.Getenv("FLOODGATE_EXPERIMENT") != "1" {
		t.Skip("latency experiment; run with: FLOODGATE_EXPERIMENT=1 go test ./ratelimit -run LatencyExperiment -v -count=1")
	}
	srv := redistest.Start(t)
	const perSecond = 5000
	seconds := 10
	if v, err := strconv.Atoi(os.Getenv("FLOODGATE_EXPERIMENT_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	policy := Policy{Name: "p", Rate: 1e6, Burst: 1e6, Backend: BackendRedis}
	// A long timeout so every decision is a Redis decision, late or not:
	// a fallback would be fast and hide the tail being measured.
	rl := redisLimiters(t, RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second}, []Policy{policy})
	local := policy
	local.Backend = BackendLocal
	ll := redisLimiters(t, RedisConfig{}, []Policy{local})
	for i := range 1000 { // warm the connection pool
		rl.Allow("p", fmt.Appendf(nil, "client-%d", i%100))
	}
	ping := func(int) bool { return rl.redis.Load().client.Ping(t.Context()).Err() != nil }
	decide := func(l *Limiters) func(int) bool {
		return func(i int) bool {
			var buf [32]byte
			dec, _ := l.Allow("p", fmt.Appendf(buf[:0], "client-%d", i%1000))
			return dec.Fallback
		}
	}
	var pings, decisions pacedResult
	for range seconds {
		pings.add(pacedCalls(perSecond, time.Second, ping))
		decisions.add(pacedCalls(perSecond, time.Second, decide(rl)))
	}
	locals := pacedCalls(perSecond, time.Second, decide(ll))
	for _, r := range []*pacedResult{&pings, &decisions} {
		slices.Sort(r.lat)
	}
	logQuantiles(t, "PING (baseline)", pings.lat, perSecond, pings.failed)
	logQuantiles(t, "redis decision", decisions.lat, perSecond, decisions.failed)
	logQuantiles(t, "local decision", locals.lat, perSecond, locals.failed)
	q := func(lat []time.Duration, p float64) time.Duration { return quantile(lat, p) }
	t.Logf("redis decision p99 minus PING p99: %v; calls over 1 ms: PING %d, decision %d (of %d each)",
		q(decisions.lat, 0.99)-q(pings.lat, 0.99), over(pings.lat, time.Millisecond), over(decisions.lat, time.Millisecond), len(pings.lat))
	if e := rl.redis.Load().lastErrText.Load(); e != nil {
		t.Logf("redis: %+v, last error %s", rl.RedisStats(), *e)
	}
	if p99 := q(decisions.lat, 0.99); p99 > time.Millisecond || decisions.failed > 0 {
		t.Errorf("redis decision p99 %v (target 1ms), %d fallbacks", p99, decisions.failed)
	}
}

// over counts the latencies (sorted) above d.
func over(lat []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(lat, d+1)
	return len(lat) - i
}

type pacedResult struct {
	lat    []time.Duration // sorted
	failed int
}

// add appends another run's results (the union is no longer sorted).
func (r *pacedResult) add(o pacedResult) {
	r.lat = append(r.lat, o.lat...)
	r.failed += o.failed
}

// pacedCalls runs call(i) at a steady rate from a pool of workers and
// returns each call's latency, sorted, and how many reported failure.
func pacedCalls(perSecond int, d time.Duration, call func(i int) (failed bool)) pacedResult {
	period := time.Second / time.Duration(perSecond)
	n := int(d / period)
	jobs := make(chan int, n)
	var mu sync.Mutex
	res := pacedResult{lat: make([]time.Duration, 0, n)}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				t0 := time.Now()
				failed := call(i)
				took := time.Since(t0)
				mu.Lock()
				res.lat = append(res.lat, took)
				if failed {
					res.failed++
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * period))) // pacing
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	slices.Sort(res.lat)
	return res
}

func quantile(lat []time.Duration, p float64) time.Duration {
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

func logQuantiles(t *testing.T, name string, lat []time.Duration, perSecond, failed int) {
	t.Helper()
	q := func(p float64) time.Duration { return quantile(lat, p) }
	t.Logf("%s: %d calls at %d/s: p50 %v p90 %v p99 %v p99.9 %v max %v; failed or local %d",
		name, len(lat), perSecond, q(0.5), q(0.9), q(0.99), q(0.999), lat[len(lat)-1], failed)
}

// BenchmarkRedisAllow is the closed-loop cost of one Redis-backed decision
// on loopback, from parallel callers.
func BenchmarkRedisAllow(b *testing.B) {
	srv := redistest.Start(b)
	l := New(Options{SweepInterval: -1})
	defer l.Close()
	if err := l.Configure(Config{Policies: []Policy{{Name: "p", Rate: 1e9, Burst: 1e9, Backend: BackendRedis}},
		Redis: RedisConfig{Addrs: []string{srv.Addr}, Timeout: time.Second}}); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		var buf [32]byte
		for pb.Next() {
			if d, _ := l.Allow("p", fmt.Appendf(buf[:0], "k%d", i%1024)); d.Fallback {
				b.Fatal("fallback")
			}
			i++
		}
	})
}

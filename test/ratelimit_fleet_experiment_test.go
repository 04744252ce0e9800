package test

import (
	"math"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/redistest"
)

// Experiments for issue 14, opt-in and bounded (about a minute in all):
//
//	FLOODGATE_EXPERIMENT=1 go test ./test -run 'FleetExperiment' -v -count=1
//
// They print their figures and fail when a target is missed.

// TestFleetExperimentGlobalRateSingle and ...Cluster: three gateway
// processes sharing one Redis (or a three-master cluster), one client key
// offered 3x the limit spread over them for 10 s: admitted within 2 % of
// rate x 10 s + burst.
func TestFleetExperimentGlobalRateSingle(t *testing.T) {
	fleetExperiment(t)
	srv := redistest.Start(t)
	globalRateExperiment(t, []string{srv.Addr}, false)
}

func TestFleetExperimentGlobalRateCluster(t *testing.T) {
	fleetExperiment(t)
	cluster := redistest.StartCluster(t, 3)
	globalRateExperiment(t, cluster.Addrs(), true)
}

func globalRateExperiment(t *testing.T, addrs []string, cluster bool) {
	o := startSlotOrigin(t, 0)
	const rate, burst = 200.0, 50
	// FLOODGATE_REDIS_TIMEOUT overrides the 50ms default decision timeout:
	// on a starved machine late calls are decided locally, which the
	// fallbacks figure shows.
	gws := startFleet(t, 3, fleetSpec{origin: o.addr, redisAddrs: addrs, cluster: cluster, rate: rate, burst: burst, timeout: experimentTimeout(t)})
	c := httpClient(t)
	res := offerPaced(c, gws, "/r/", "one-client", 3*rate, 10*time.Second)
	want := rate*res.window().Seconds() + burst
	errPct := 100 * (float64(res.admitted()) - want) / want
	t.Logf("cluster=%v: 3 gateways, rate %v/s burst %d, offered %v/s for %v: admitted %d, want %.1f, error %+.2f%%",
		cluster, rate, burst, 3*rate, res.window().Round(time.Millisecond), res.admitted(), want, errPct)
	t.Logf("per gateway %v; admitted per second %v; failures %d; max latency %v",
		res.perGateway, perSecondAdmitted(res), res.failures(), res.maxLatency.Round(time.Microsecond))
	t.Logf("decisions made locally because a Redis call failed or timed out: %v", sumMetric(t, c, gws, `floodgate_rate_limit_fallbacks_total{policy="fleet"}`))
	if res.failures() > 0 {
		t.Fatalf("%d requests failed", res.failures())
	}
	if math.Abs(errPct) > 2 {
		t.Fatalf("admitted %d, want %.1f within 2%%", res.admitted(), want)
	}
}

// TestFleetExperimentRedisKilledMidRun: three gateways at 2x each one's
// local limit (6x the global one) for 12 s; Redis is killed at 4 s and
// restarted at 8 s. No request may fail; while Redis is down each gateway
// applies its local limit from the first timeout on; once it is back the
// global limit resumes without a restart.
func TestFleetExperimentRedisKilledMidRun(t *testing.T) {
	fleetExperiment(t)
	srv := redistest.Start(t)
	o := startSlotOrigin(t, 0)
	const rate, burst = 100.0, 20
	timeout := experimentTimeout(t)
	gws := startFleet(t, 3, fleetSpec{origin: o.addr, redisAddrs: []string{srv.Addr}, rate: rate, burst: burst, timeout: timeout})
	c := httpClient(t)
	var killedAt, restartedAt time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(4 * time.Second) // the experiment's schedule
		killedAt = time.Now()
		srv.Kill()
		time.Sleep(4 * time.Second)
		restartedAt = time.Now()
		srv.Restart()
	}()
	res := offerPaced(c, gws, "/r/", "one-client", 6*rate, 12*time.Second)
	<-done
	perSec := perSecondAdmitted(res)
	t.Logf("rate %v/s burst %d, 3 gateways offered %v/s; Redis killed at %v, restarted at %v",
		rate, burst, 6*rate, killedAt.Sub(res.first).Round(time.Millisecond), restartedAt.Sub(res.first).Round(time.Millisecond))
	t.Logf("admitted per second (global limit %v/s, local fallback 3 x %v/s): %v", rate, rate, perSec)
	t.Logf("statuses %v, failures %d, max client latency %v (Redis timeout %v); local decisions %v",
		res.statuses, res.failures(), res.maxLatency.Round(time.Microsecond), timeout,
		sumMetric(t, c, gws, `floodgate_rate_limit_fallbacks_total{policy="fleet"}`))
	if res.failures() > 0 {
		t.Fatalf("%d requests failed (first error %v)", res.failures(), res.firstErr)
	}
	// Seconds fully inside each phase.
	for _, sec := range []int{1, 2, 3, 9, 10} {
		if got := float64(perSec[sec]); got > rate*1.15 {
			t.Errorf("second %d with Redis up admitted %v, global limit %v", sec, got, rate)
		}
	}
	for _, sec := range []int{5, 6, 7} {
		if got := float64(perSec[sec]); got > 3*rate*1.15 || got < 3*rate*0.7 {
			t.Errorf("second %d with Redis down admitted %v, want about 3 local limits (%v)", sec, got, 3*rate)
		}
	}
	// A request waits for Redis at most one timeout; on a busy machine
	// the client sees more (its own scheduling), so the bound is loose.
	if res.maxLatency > timeout+time.Second {
		t.Errorf("a request took %v: Redis failures must cost at most one timeout (%v)", res.maxLatency, timeout)
	}
}

// TestFleetExperimentConcurrency: N = 5, 50 concurrent slow requests from
// one key across three gateways for 10 s: never more than 5 in flight at
// the origin. Then one gateway holding all slots is killed with SIGKILL:
// the slots come back within the lease.
func TestFleetExperimentConcurrency(t *testing.T) {
	fleetExperiment(t)
	srv := redistest.Start(t)
	o := startSlotOrigin(t, 200*time.Millisecond)
	const limit, lease = 5, 3 * time.Second
	// A Redis call that times out is decided locally (up to N per
	// gateway), so the timeout is generous here: on this shared machine
	// CPU starvation, not Redis, is what makes calls late. The fallbacks
	// are counted and reported.
	gws := startFleet(t, 3, fleetSpec{origin: o.addr, redisAddrs: []string{srv.Addr}, concurrency: limit, lease: lease, timeout: 500 * time.Millisecond})
	c := httpClient(t)

	var mu sync.Mutex
	statuses := map[int]int{}
	var sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 50 {
		wg.Go(func() {
			for time.Since(start) < 10*time.Second {
				code := sendClient(c, gws[w%3], "/c/slow", "one-client")
				sent.Add(1)
				mu.Lock()
				statuses[code]++
				mu.Unlock()
				if code == http.StatusTooManyRequests {
					time.Sleep(50 * time.Millisecond) // a client backing off, keeping the run bounded
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("N=%d, 50 clients over 3 gateways for %v: statuses %v, origin peak in flight %d, admitted %.1f/s (ideal %.1f/s)",
		limit, elapsed.Round(time.Millisecond), statuses, o.peak.Load(), float64(statuses[http.StatusOK])/elapsed.Seconds(), float64(limit)/0.2)
	fallbacks := sumMetric(t, c, gws, `floodgate_concurrency_fallbacks_total{policy="slots"}`)
	t.Logf("decisions made locally because a Redis call failed or timed out: %v", fallbacks)
	if o.peak.Load() > limit {
		t.Fatalf("origin saw %d in flight, limit %d", o.peak.Load(), limit)
	}
	if statuses[0] > 0 {
		t.Fatalf("%d requests failed", statuses[0])
	}

	o.peak.Store(0)
	held := make(chan int, limit)
	for range limit {
		go func() { held <- sendClient(c, gws[0], "/c/hold", "crash-client") }()
	}
	eventually(t, 5*time.Second, "all slots held at the origin", func() bool { return o.inFlight.Load() == limit })
	killed := time.Now()
	if err := gws[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var back time.Duration
	for {
		if sendClient(c, gws[1], "/c/", "crash-client") == http.StatusOK {
			back = time.Since(killed)
			break
		}
		if time.Since(killed) > 3*lease {
			t.Fatal("slots never came back")
		}
		time.Sleep(10 * time.Millisecond) // pacing the retries
	}
	t.Logf("kill -9 of the gateway holding all %d slots: first slot back after %v (lease %v)", limit, back.Round(time.Millisecond), lease)
	if back > lease+200*time.Millisecond {
		t.Fatalf("slots back after %v, lease %v", back, lease)
	}
	for range limit {
		<-held
	}
}

// experimentTimeout is the Redis decision timeout of the rate experiments:
// FLOODGATE_REDIS_TIMEOUT if set, else the 50ms default.
func experimentTimeout(t *testing.T) time.Duration {
	v := os.Getenv("FLOODGATE_REDIS_TIMEOUT")
	if v == "" {
		return 50 * time.Millisecond
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("FLOODGATE_REDIS_TIMEOUT: %v", err)
	}
	return d
}

// sumMetric adds one series over the live gateways.
func sumMetric(t *testing.T, c *http.Client, gws []*proc, series string) float64 {
	total := 0.0
	for _, gw := range gws {
		select {
		case err := <-gw.exited:
			gw.exited <- err // put back for stop
			continue
		default:
		}
		v, _ := metric(t, c, gw, series)
		total += v
	}
	return total
}

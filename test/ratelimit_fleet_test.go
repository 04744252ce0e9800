package test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/redistest"
)

// Short versions, with loose bounds, of the fleet-wide limit properties;
// the *FleetExperiment tests hold the tight figures.

// TestFleetRateLimitIsGlobal: three gateways on one Redis admit one key's
// limit once, not three times.
func TestFleetRateLimitIsGlobal(t *testing.T) {
	srv := redistest.Start(t)
	o := startSlotOrigin(t, 0)
	const rate, burst = 50.0, 10
	// A generous Redis timeout: on this shared machine a call can be late
	// because the CPU is starved, and a late call is decided locally
	// (each gateway on its own), which the fallback test covers.
	gws := startFleet(t, 3, fleetSpec{origin: o.addr, redisAddrs: []string{srv.Addr}, rate: rate, burst: burst, timeout: time.Second})
	c := httpClient(t)
	res := offerPaced(c, gws, "/r/", "one-client", 3*rate, 2*time.Second)
	want := rate*res.window().Seconds() + burst
	t.Logf("admitted %d, want %.1f; %v", res.admitted(), want, res)
	if res.failures() > 0 {
		t.Fatalf("%d requests failed: %v", res.failures(), res)
	}
	// Each gateway alone would admit about 3x want.
	if got := float64(res.admitted()); got > want*1.1 || got < want*0.8 {
		t.Fatalf("admitted %d, want %.1f (+10%%/-20%%)", res.admitted(), want)
	}
}

// TestFleetRedisDownFallsBackToLocalLimits: with Redis killed no request
// fails and each gateway applies its local bucket (never unlimited, never
// everything refused); with Redis back, the global limit returns without a
// restart.
func TestFleetRedisDownFallsBackToLocalLimits(t *testing.T) {
	srv := redistest.Start(t)
	o := startSlotOrigin(t, 0)
	const rate, burst = 20.0, 5
	// Killed, Redis refuses connections at once; the generous timeout
	// keeps a busy machine's late answers (decided locally) out of the
	// "Redis back" phase. ratelimit's TestRedisHang... covers timeouts.
	gws := startFleet(t, 3, fleetSpec{origin: o.addr, redisAddrs: []string{srv.Addr}, rate: rate, burst: burst, timeout: time.Second})
	c := httpClient(t)

	srv.Kill()
	// 3x each gateway's local limit.
	down := offerPaced(c, gws, "/r/", "while-down", 9*rate, 1500*time.Millisecond)
	localWant := rate*down.window().Seconds() + burst
	t.Logf("Redis down: local bound per gateway %.1f; %v", localWant, down)
	if down.failures() > 0 {
		t.Fatalf("%d requests failed with Redis down: %v", down.failures(), down)
	}
	for i, m := range down.perGateway {
		got := float64(m[http.StatusOK])
		if got > localWant*1.15 {
			t.Fatalf("gateway %d admitted %v with Redis down: more than its local limit %.1f", i, got, localWant)
		}
		if got < localWant*0.5 {
			t.Fatalf("gateway %d admitted %v with Redis down: want about its local limit %.1f, not a blanket 429", i, got, localWant)
		}
	}

	srv.Restart()
	took := awaitRedisDecisions(t, c, gws, 10*time.Second)
	t.Logf("global decisions resumed %v after the restart", took)
	up := offerPaced(c, gws, "/r/", "after-restart", 3*rate, 1500*time.Millisecond)
	want := rate*up.window().Seconds() + burst
	t.Logf("Redis back: want %.1f; %v", want, up)
	if up.failures() > 0 || float64(up.admitted()) > want*1.15 {
		t.Fatalf("after Redis came back: admitted %d, want at most %.1f +15%%: %v", up.admitted(), want, up)
	}
}

// TestFleetConcurrencyLimitAndLeaseRecovery: one key's requests in flight
// across the fleet never exceed the limit at the origin, and slots held by
// a gateway killed with SIGKILL come back within the lease.
func TestFleetConcurrencyLimitAndLeaseRecovery(t *testing.T) {
	srv := redistest.Start(t)
	o := startSlotOrigin(t, 100*time.Millisecond)
	const limit, lease = 2, time.Second
	// A generous Redis timeout: a call that times out on a busy machine
	// is decided locally (up to the limit per gateway), which is the
	// fallback's job but not what this test checks.
	gws := startFleet(t, 3, fleetSpec{origin: o.addr, redisAddrs: []string{srv.Addr}, concurrency: limit, lease: lease, timeout: time.Second})
	c := httpClient(t)

	// 12 clients in a closed loop for about a second.
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Second)
	for w := range 12 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				code := sendClient(c, gws[w%3], "/c/slow", "k1")
				mu.Lock()
				statuses[code]++
				mu.Unlock()
				if code == http.StatusTooManyRequests {
					time.Sleep(10 * time.Millisecond) // a client backing off
				}
			}
		})
	}
	wg.Wait()
	t.Logf("statuses %v, origin peak in flight %d (limit %d)", statuses, o.peak.Load(), limit)
	if o.peak.Load() > limit {
		t.Fatalf("origin saw %d in flight, limit %d", o.peak.Load(), limit)
	}
	if statuses[http.StatusOK] == 0 || statuses[http.StatusTooManyRequests] == 0 || len(statuses) != 2 {
		t.Fatalf("statuses %v, want 200s and 429s only", statuses)
	}

	// Gateway 0 holds both slots of key k2, then dies.
	held := make(chan int, limit)
	for range limit {
		go func() { held <- sendClient(c, gws[0], "/c/hold", "k2") }()
	}
	eventually(t, 5*time.Second, "both slots held at the origin", func() bool { return o.inFlight.Load() == limit })
	if code := sendClient(c, gws[1], "/c/", "k2"); code != http.StatusTooManyRequests {
		t.Fatalf("third request for k2 answered %d, want 429", code)
	}
	killed := time.Now()
	if err := gws[0].cmd.Process.Kill(); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	var back time.Duration
	for {
		if code := sendClient(c, gws[1], "/c/", "k2"); code == http.StatusOK {
			back = time.Since(killed)
			break
		}
		if time.Since(killed) > 5*lease {
			t.Fatal("slots of the killed gateway never came back")
		}
		time.Sleep(20 * time.Millisecond) // pacing the retries
	}
	t.Logf("slots back %v after kill -9 (lease %v)", back, lease)
	if back > lease+500*time.Millisecond {
		t.Fatalf("slots back after %v, lease %v", back, lease)
	}
	for range limit {
		if code := <-held; code != 0 {
			t.Fatalf("request through the killed gateway answered %d", code)
		}
	}
}

// sendClient sends one GET as client and returns the status, 0 on a
// transport error.
func sendClient(c *http.Client, gw *proc, path, client string) int {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s%s", gw.addr, path), nil)
	req.Header.Set("X-Client", client)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

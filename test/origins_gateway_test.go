package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/internal/consulfake"
	"github.com/floodgate-dev/floodgate/origins"
)

// Issue 4 acceptance through the gateway: real fasthttp instances on loopback behind
// an in-process gateway, traffic sent to the gateway, and every count taken at the
// instances themselves. The origins package proves the picker and policies with its
// own driver; these tests prove the proxy wires them in (picks, done callbacks,
// retries, budget, hedging, discovery).

// lbInstance is one origin instance whose latency and status a test can change while
// traffic runs, and which counts the requests it receives.
type lbInstance struct {
	*origin
	hits   atomic.Int64
	delay  atomic.Int64 // nanoseconds slept before answering
	status atomic.Int32
}

func startLBInstance(t *testing.T, delay time.Duration, status int) *lbInstance {
	t.Helper()
	in := &lbInstance{}
	in.delay.Store(int64(delay))
	in.status.Store(int32(status))
	in.origin = startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		in.hits.Add(1)
		if d := time.Duration(in.delay.Load()); d > 0 {
			time.Sleep(d) // the instance's service time, not synchronisation
		}
		ctx.Response.Header.Set("X-Instance", in.addr)
		ctx.SetStatusCode(int(in.status.Load()))
		ctx.SetBodyString("ok")
	})
	return in
}

func startLBInstances(t *testing.T, n int, delay time.Duration, status int) []*lbInstance {
	out := make([]*lbInstance, n)
	for i := range out {
		out[i] = startLBInstance(t, delay, status)
	}
	return out
}

func lbAddrs(ins []*lbInstance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.addr
	}
	return out
}

func hitCounts(ins []*lbInstance) []int64 {
	out := make([]int64, len(ins))
	for i, in := range ins {
		out[i] = in.hits.Load()
	}
	return out
}

// deadAddr is a loopback port nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// poolConfig is a gateway config with one origin "pool" over addrs and a catch-all
// route to it. originExtra is YAML merged into the origin (indented by the caller
// with four spaces).
func poolConfig(addrs []string, originExtra string) string {
	var b strings.Builder
	b.WriteString("server: {listen: \"127.0.0.1:0\"}\norigins:\n  pool:\n    instances:\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "      - {address: %q}\n", a)
	}
	b.WriteString("    timeouts: {connect: 500ms, response: 5s}\n")
	b.WriteString(originExtra)
	b.WriteString("routes:\n  - {name: pool, match: {path_prefix: /}, origin: pool}\n")
	return b.String()
}

func poolOrigin(t *testing.T, gw *inproc, name string) *origins.Origin {
	t.Helper()
	o, ok := gw.reg.Get(name)
	if !ok {
		t.Fatalf("origin %s not in the registry", name)
	}
	return o
}

func instanceByAddr(o *origins.Origin, addr string) *origins.Instance {
	for _, in := range o.Instances() {
		if in.Addr() == addr {
			return in
		}
	}
	return nil
}

// loadResult is what the clients saw.
type loadResult struct {
	n          int
	lat        []time.Duration // sorted
	statuses   map[int]int
	categories map[string]int
	instances  map[string]int // X-Instance of the answer
	errs       int
	firstErr   error
	elapsed    time.Duration
}

func (r loadResult) pct(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// countAbove is the number of requests that took at least d.
func (r loadResult) countAbove(d time.Duration) int {
	i, _ := slices.BinarySearch(r.lat, d)
	return len(r.lat) - i
}

// drive sends n requests of method to url from workers concurrent clients (closed
// loop) and collects what came back. Each request is bounded by the client timeout.
func drive(c *http.Client, method, url string, workers, n int) loadResult {
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
		res  = loadResult{n: n, statuses: map[int]int{}, categories: map[string]int{}, instances: map[string]int{}}
	)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest(method, url, nil)
				t0 := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.errs++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					res.statuses[resp.StatusCode]++
					res.categories[resp.Header.Get("X-Floodgate-Status")]++
					res.instances[resp.Header.Get("X-Instance")]++
				}
				mu.Unlock()
				lat = append(lat, d)
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

func (r loadResult) String() string {
	return fmt.Sprintf("n=%d in %v: p50 %v p95 %v p99 %v max %v statuses %v categories %v errors %d",
		r.n, r.elapsed.Round(time.Millisecond), r.pct(0.5).Round(100*time.Microsecond), r.pct(0.95).Round(100*time.Microsecond),
		r.pct(0.99).Round(100*time.Microsecond), r.pct(1).Round(100*time.Microsecond), r.statuses, r.categories, r.errs)
}

// shares turns hit counts gathered since before into fractions of their sum.
func shares(ins []*lbInstance, before []int64) (counts []int64, total int64, frac []float64) {
	after := hitCounts(ins)
	counts = make([]int64, len(ins))
	for i := range ins {
		counts[i] = after[i] - before[i]
		total += counts[i]
	}
	frac = make([]float64, len(ins))
	for i := range ins {
		if total > 0 {
			frac[i] = float64(counts[i]) / float64(total)
		}
	}
	return counts, total, frac
}

// eventually polls cond every 5ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func getOnce(t *testing.T, c *http.Client, url string) (*http.Response, time.Duration) {
	t.Helper()
	t0 := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, time.Since(t0)
}

func TestOriginP2CSpreadsEqualInstancesThroughGateway(t *testing.T) {
	ins := startLBInstances(t, 4, 5*time.Millisecond, 200)
	// A 200ms decay, as the origins package's own experiment found: with the default
	// 10s, one scheduler stall on this shared machine is remembered for the whole run.
	gw := startGateway(t, poolConfig(lbAddrs(ins), "    lb: p2c\n    latency: {decay: 200ms}\n"))
	c := httpClient(t)
	const n = 2400
	before := hitCounts(ins)
	r := drive(c, "GET", "http://"+gw.addr+"/", 8, n)
	counts, total, frac := shares(ins, before)
	t.Logf("p2c, 4 equal instances: %v; per instance %v", r, counts)
	if r.errs > 0 || r.statuses[200] != n {
		t.Fatalf("want %d x 200, got %v (errors %d, first %v)", n, r.statuses, r.errs, r.firstErr)
	}
	if total != n {
		t.Errorf("instances saw %d requests for %d sent (no retries or hedges expected)", total, n)
	}
	for i, f := range frac {
		if f < 0.25*0.9 || f > 0.25*1.1 {
			t.Errorf("instance %d got %.1f%% of requests, want 25%% ±10%% (22.5..27.5)", i, 100*f)
		}
	}
}

// slowShareRun sends traffic through a gateway over four instances, one 10x slower,
// and returns the client view and the slow instance's share of attempts.
func slowShareRun(t *testing.T, lb string, fast, slow time.Duration, workers, n int, withSlow bool) (loadResult, float64) {
	t.Helper()
	ins := startLBInstances(t, 4, fast, 200)
	if withSlow {
		ins[0].delay.Store(int64(slow))
	}
	// Decay 1s instead of 10s: whole-process stalls of 150-350ms on this machine would
	// otherwise make the fast instances look slow for the rest of a short run; 1s still
	// re-tries the slow instance only about once a second.
	gw := startGateway(t, poolConfig(lbAddrs(ins), "    lb: "+lb+"\n    latency: {decay: 1s}\n"))
	c := httpClient(t)
	before := hitCounts(ins)
	r := drive(c, "GET", "http://"+gw.addr+"/", workers, n)
	if r.errs > 0 || r.statuses[200] != n {
		t.Fatalf("%s: want %d x 200, got %v (errors %d, first %v)", lb, n, r.statuses, r.errs, r.firstErr)
	}
	_, _, frac := shares(ins, before)
	return r, frac[0]
}

func TestOriginSlowInstanceShareP2CVersusRoundRobin(t *testing.T) {
	const fast, slow = 10 * time.Millisecond, 100 * time.Millisecond
	p2c, p2cShare := slowShareRun(t, "p2c", fast, slow, 8, 800, true)
	rr, rrShare := slowShareRun(t, "round_robin", fast, slow, 8, 160, true)
	t.Logf("one of 4 instances 10x slower (%v vs %v)", slow, fast)
	t.Logf("  p2c:         slow share %5.2f%%  %v", 100*p2cShare, p2c)
	t.Logf("  round robin: slow share %5.2f%%  %v", 100*rrShare, rr)
	if p2cShare > 0.08 {
		t.Errorf("p2c: slow instance share %.2f%%, want well below 25%% (< 8%%)", 100*p2cShare)
	}
	if rrShare < 0.22 || rrShare > 0.28 {
		t.Errorf("round robin does not adapt: slow share %.2f%%, want ~25%%", 100*rrShare)
	}
}

func TestOriginFast500InstanceIsEjected(t *testing.T) {
	ins := startLBInstances(t, 4, 2*time.Millisecond, 200)
	bad := ins[0]
	bad.delay.Store(0)
	bad.status.Store(500)
	// Defaults otherwise: 5 consecutive failures open the breaker, open_timeout 5s
	// outlasts the run, and a failure is charged as a 1s latency.
	gw := startGateway(t, poolConfig(lbAddrs(ins), "    lb: p2c\n"))
	c := httpClient(t)
	const n, workers = 1000, 8
	r := drive(c, "GET", "http://"+gw.addr+"/", workers, n)
	o := poolOrigin(t, gw, "pool")
	state := instanceByAddr(o, bad.addr).BreakerState()
	t.Logf("fast-500 instance got %d of %d requests (%.2f%%), breaker %v; clients: %v",
		bad.hits.Load(), n, 100*float64(bad.hits.Load())/n, state, r)
	if r.errs > 0 {
		t.Fatalf("client errors: %d (first %v)", r.errs, r.firstErr)
	}
	// After its first failure it scores as 1s and is shunned; during warm-up an
	// instance with no answer yet and one in flight scores worse still, so a few
	// concurrent picks may land on it. Either way the breaker caps it at 5 + workers.
	if h := bad.hits.Load(); h > 5+workers {
		t.Errorf("fast-failing instance attracted %d requests, want at most %d", h, 5+workers)
	}
	// Only the bad instance answers 500, and 500 is not a retry status by default:
	// every one of its answers reaches a client, labelled as an origin failure.
	if r.statuses[500] != int(bad.hits.Load()) || r.categories["origin_5xx"] != r.statuses[500] {
		t.Errorf("500s seen by clients %d, origin_5xx %d, bad instance hits %d", r.statuses[500], r.categories["origin_5xx"], bad.hits.Load())
	}
	if r.statuses[200] != n-r.statuses[500] {
		t.Errorf("statuses %v", r.statuses)
	}
	// Here the failure penalty (1s) ejects the instance before its breaker trips;
	// TestOriginFast500BreakerEjectsInGatewayProcess covers the breaker alone.
	if f := instanceByAddr(o, bad.addr).Failures(); f != uint64(bad.hits.Load()) {
		t.Errorf("instance failures %d, hits %d", f, bad.hits.Load())
	}
	if bad.hits.Load() >= 5 && state != origins.BreakerOpen {
		t.Errorf("breaker of the failing instance is %v, want open", state)
	}
	for _, in := range ins[1:] {
		if b := instanceByAddr(o, in.addr).BreakerState(); b != origins.BreakerClosed {
			t.Errorf("healthy instance %s breaker %v", in.addr, b)
		}
	}
}

// With the failure penalty switched off, a fast-500 instance looks idle to p2c (the
// known trap): only its breaker can eject it. This runs the real gateway binary and
// reads the breaker state from its admin endpoint.
func TestOriginFast500BreakerEjectsInGatewayProcess(t *testing.T) {
	ins := startLBInstances(t, 4, 2*time.Millisecond, 200)
	bad := ins[0]
	bad.delay.Store(0)
	bad.status.Store(500)
	cfg := strings.Replace(poolConfig(lbAddrs(ins),
		"    lb: p2c\n    latency: {failure_penalty: 0s}\n    breaker: {consecutive_failures: 5, failure_ratio: 0, open_timeout: 1m}\n"),
		"server: {listen: \"127.0.0.1:0\"}\n",
		"server: {listen: \"127.0.0.1:0\"}\nadmin: {listen: \"127.0.0.1:0\", token: t0ken}\n", 1)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, cfg)
	p := startProcess(t, path)
	c := httpClient(t)
	const n, workers = 600, 8
	r := drive(c, "GET", "http://"+p.addr+"/", workers, n)
	_, body := adminGet(t, c, "http://"+p.adminAddr+"/admin/origins", "t0ken")
	var view map[string]struct {
		Instances []struct {
			Address  string `json:"address"`
			Breaker  string `json:"breaker"`
			Requests uint64 `json:"requests"`
			Failures uint64 `json:"failures"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(body, &view); err != nil {
		t.Fatalf("/admin/origins: %v: %s", err, body)
	}
	t.Logf("no failure penalty: fast-500 instance got %d of %d requests; clients %v", bad.hits.Load(), n, r)
	if r.errs > 0 || r.statuses[200]+r.statuses[500] != n {
		t.Fatalf("clients: %v", r)
	}
	// Five consecutive failures trip it; attempts already in flight when the fifth
	// completes may still land.
	if h := bad.hits.Load(); h < 5 || h > 5+workers {
		t.Errorf("fast-failing instance got %d requests, want 5..%d (its breaker trips at 5)", h, 5+workers)
	}
	ev := p.waitFor(t, "circuit breaker state change", 5*time.Second)
	if ev["origin"] != "pool" || ev["instance"] != bad.addr || ev["from"] != "closed" || ev["to"] != "open" {
		t.Errorf("breaker log line %v, want origin pool, instance %s, closed -> open", ev, bad.addr)
	}
	found := false
	for _, in := range view["pool"].Instances {
		switch {
		case in.Address == bad.addr:
			found = true
			t.Logf("/admin/origins for it: %+v", in)
			if in.Breaker != "open" || in.Failures != uint64(bad.hits.Load()) {
				t.Errorf("admin shows the failing instance as %+v, want breaker open with %d failures", in, bad.hits.Load())
			}
		case in.Breaker != "closed" || in.Failures != 0:
			t.Errorf("admin shows a healthy instance as %+v", in)
		}
	}
	if !found {
		t.Errorf("failing instance %s missing from /admin/origins: %s", bad.addr, body)
	}
}

type breakerEvent struct {
	instance string
	from, to origins.BreakerState
	at       time.Time
}

func breakerEvents() (origins.Hooks, <-chan breakerEvent) {
	ch := make(chan breakerEvent, 64)
	return origins.Hooks{OnBreakerChange: func(_, instance string, from, to origins.BreakerState) {
		select { // hooks must not block
		case ch <- breakerEvent{instance: instance, from: from, to: to, at: time.Now()}:
		default:
		}
	}}, ch
}

func TestOriginBreakerOpensHalfOpensAndCloses(t *testing.T) {
	good := startLBInstance(t, 0, 200)
	flaky := startLBInstance(t, 0, 500)
	hooks, events := breakerEvents()
	const openTimeout = 400 * time.Millisecond
	// Round robin, so the failing instance keeps being offered traffic and only its
	// breaker can keep requests away (p2c's failure penalty would shun it anyway).
	gw := startGatewayObserved(t, poolConfig([]string{good.addr, flaky.addr}, fmt.Sprintf(
		"    lb: round_robin\n    panic_threshold: 0\n    breaker: {consecutive_failures: 3, failure_ratio: 0, open_timeout: %s, half_open_max: 2}\n",
		openTimeout)), hooks)
	c := httpClient(t)
	url := "http://" + gw.addr + "/"

	// await sends requests one at a time until the flaky instance's breaker reports
	// the transition, and returns it.
	await := func(from, to origins.BreakerState, within time.Duration) breakerEvent {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev := <-events:
				if ev.instance != flaky.addr {
					t.Fatalf("unexpected breaker change on %s: %v -> %v", ev.instance, ev.from, ev.to)
				}
				if ev.from != from || ev.to != to {
					t.Fatalf("breaker went %v -> %v, want %v -> %v", ev.from, ev.to, from, to)
				}
				return ev
			case <-deadline:
				t.Fatalf("breaker did not go %v -> %v within %v", from, to, within)
			default:
			}
			getOnce(t, c, url)
		}
	}

	opened := await(origins.BreakerClosed, origins.BreakerOpen, 5*time.Second)
	if h := flaky.hits.Load(); h != 3 {
		t.Errorf("breaker opened after %d failures, want 3", h)
	}
	// Open: no traffic reaches the instance. 20 sequential requests on loopback take
	// a few ms; the check is only valid while the open period lasts.
	hitsAtOpen := flaky.hits.Load()
	for i := 0; i < 20; i++ {
		if resp, _ := getOnce(t, c, url); resp.StatusCode != 200 || resp.Header.Get("X-Instance") != good.addr {
			t.Fatalf("while open: %d from %q, want 200 from the good instance", resp.StatusCode, resp.Header.Get("X-Instance"))
		}
	}
	if time.Since(opened.at) < openTimeout {
		if h := flaky.hits.Load(); h != hitsAtOpen {
			t.Errorf("open breaker let %d requests through", h-hitsAtOpen)
		}
	}

	// After open_timeout a probe goes through; the instance still fails, so the
	// breaker reopens.
	half := await(origins.BreakerOpen, origins.BreakerHalfOpen, 5*time.Second)
	if d := half.at.Sub(opened.at); d < openTimeout {
		t.Errorf("half-open after %v, before open_timeout %v", d, openTimeout)
	}
	await(origins.BreakerHalfOpen, origins.BreakerOpen, 5*time.Second)
	if h := flaky.hits.Load(); h != hitsAtOpen+1 {
		t.Errorf("half-open admitted %d probes before failing, want 1", h-hitsAtOpen)
	}

	// Fix the instance: the next probes succeed and close the breaker.
	flaky.status.Store(200)
	reopened := time.Now()
	await(origins.BreakerOpen, origins.BreakerHalfOpen, 5*time.Second)
	closed := await(origins.BreakerHalfOpen, origins.BreakerClosed, 5*time.Second)
	t.Logf("opened after 3 failures; half-open %v later; reopened on a failed probe; closed %v after the fix",
		half.at.Sub(opened.at).Round(time.Millisecond), closed.at.Sub(reopened).Round(time.Millisecond))

	// Closed: round robin gives it half the traffic again.
	before := flaky.hits.Load()
	r := drive(c, "GET", url, 1, 40)
	if got := flaky.hits.Load() - before; got < 18 || got > 22 || r.statuses[200] != 40 {
		t.Errorf("after recovery the instance got %d of 40 requests (statuses %v), want ~20", got, r.statuses)
	}
	if s := instanceByAddr(poolOrigin(t, gw, "pool"), flaky.addr).BreakerState(); s != origins.BreakerClosed {
		t.Errorf("breaker state %v after recovery", s)
	}
}

func TestOriginPanicThresholdSpreadsAcrossAllInstances(t *testing.T) {
	for _, tc := range []struct {
		panicThreshold int
		wantSpread     bool
	}{{50, true}, {0, false}} {
		t.Run("panic_threshold="+strconv.Itoa(tc.panicThreshold), func(t *testing.T) {
			ins := startLBInstances(t, 4, 0, 200)
			for _, in := range ins[1:] {
				in.status.Store(500)
			}
			gw := startGateway(t, poolConfig(lbAddrs(ins), fmt.Sprintf(
				"    lb: round_robin\n    panic_threshold: %d\n    breaker: {consecutive_failures: 2, failure_ratio: 0, open_timeout: 1m}\n",
				tc.panicThreshold)))
			c := httpClient(t)
			url := "http://" + gw.addr + "/"
			o := poolOrigin(t, gw, "pool")
			openCount := func() int {
				n := 0
				for _, in := range ins[1:] {
					if instanceByAddr(o, in.addr).BreakerState() == origins.BreakerOpen {
						n++
					}
				}
				return n
			}
			// Trip three of four breakers (3 of 4 open is below the 50% threshold),
			// then heal the instances: their breakers stay open for a minute.
			eventually(t, 5*time.Second, "three breakers open", func() bool {
				if openCount() == 3 {
					return true
				}
				getOnce(t, c, url)
				return false
			})
			for _, in := range ins[1:] {
				in.status.Store(200)
			}
			before := hitCounts(ins)
			const n = 200
			r := drive(c, "GET", url, 4, n)
			counts, _, frac := shares(ins, before)
			t.Logf("panic_threshold %d, 3 of 4 breakers open: per instance %v; %v", tc.panicThreshold, counts, r)
			if r.statuses[200] != n {
				t.Fatalf("statuses %v, errors %d (%v)", r.statuses, r.errs, r.firstErr)
			}
			for i, f := range frac {
				switch {
				case tc.wantSpread && (f < 0.2 || f > 0.3):
					t.Errorf("panic mode: instance %d got %.1f%%, want ~25%%", i, 100*f)
				case !tc.wantSpread && i > 0 && f != 0:
					t.Errorf("no panic mode: open instance %d got %.1f%% of traffic", i, 100*f)
				}
			}
			if openCount() != 3 {
				t.Errorf("panic mode must not close breakers: %d open", openCount())
			}
		})
	}
}

func TestOriginRetryBudgetCapsFullOutage(t *testing.T) {
	ins := startLBInstances(t, 4, 0, 503)
	const (
		n      = 600
		ratio  = 0.2
		minPS  = 2.0
		window = 10 * time.Second
	)
	// Breakers are kept out of the way (they would also cut load, but this test is
	// about the budget): without a budget, 3 attempts per request would triple load.
	gw := startGateway(t, poolConfig(lbAddrs(ins), fmt.Sprintf(
		"    retry: {attempts: 3, budget: {ratio: %v, min_per_second: %v, window: %s}}\n"+
			"    breaker: {consecutive_failures: 1000000, failure_ratio: 0}\n", ratio, minPS, window)))
	c := httpClient(t)
	r := drive(c, "GET", "http://"+gw.addr+"/", 8, n)
	var attempts int64
	for _, h := range hitCounts(ins) {
		attempts += h
	}
	retries := attempts - n
	limit := int64(ratio*n + minPS*window.Seconds())
	b := poolOrigin(t, gw, "pool").Budget()
	t.Logf("full outage: %d client requests -> %d attempts at the instances (%d retries = %.1f%%, limit %d, unbudgeted up to %d); budget allowed %d denied %d; clients %v",
		n, attempts, retries, 100*float64(retries)/n, limit, 2*n, b.Allowed(), b.Denied(), r)
	if r.errs > 0 || r.statuses[503] != n || r.categories["origin_5xx"] != n {
		t.Errorf("clients should all see the origin's 503 (origin_5xx): %v %v errors %d", r.statuses, r.categories, r.errs)
	}
	if r.elapsed > window {
		t.Fatalf("run took %v, longer than the budget window %v: the bound below does not apply", r.elapsed, window)
	}
	if retries > limit {
		t.Errorf("retries %d exceed ratio*requests + min_per_second*window = %d", retries, limit)
	}
	if retries < limit/2 {
		t.Errorf("only %d retries: the budget (%d) should have been spent", retries, limit)
	}
	if int64(b.Allowed()) != retries {
		t.Errorf("budget allowed %d, instances saw %d retries", b.Allowed(), retries)
	}
}

func TestOriginRetryGoesToAnotherInstanceAndPostIsNotRetried(t *testing.T) {
	good := startLBInstance(t, 0, 200)
	dead := deadAddr(t)
	// Round robin and a breaker that never trips: every other first attempt goes to
	// the dead instance, so retries are certain, not a matter of p2c's luck.
	gw := startGateway(t, poolConfig([]string{dead, good.addr},
		"    lb: round_robin\n    breaker: {consecutive_failures: 1000000, failure_ratio: 0}\n"))
	c := httpClient(t)
	url := "http://" + gw.addr + "/"
	o := poolOrigin(t, gw, "pool")

	const n = 20
	r := drive(c, "GET", url, 1, n)
	t.Logf("GET with one dead instance: %v; retries allowed %d", r, o.Budget().Allowed())
	if r.statuses[200] != n || r.categories["success"] != n || r.instances[good.addr] != n {
		t.Errorf("every GET should succeed on the live instance: statuses %v categories %v instances %v", r.statuses, r.categories, r.instances)
	}
	// Round robin alone would put every other first attempt on the dead instance;
	// retry picks advance the same counter, so in practice nearly every request
	// starts there. Either way each request is retried at most once.
	if a := o.Budget().Allowed(); a < n/2-1 || a > n {
		t.Errorf("retries %d, want between %d and %d", a, n/2-1, n)
	}
	if h := good.hits.Load(); h != n {
		t.Errorf("live instance got %d requests, want %d (one each)", h, n)
	}

	allowed := o.Budget().Allowed()
	hits := good.hits.Load()
	p := drive(c, "POST", url, 1, n)
	t.Logf("POST with one dead instance: %v", p)
	if p.statuses[502] == 0 || p.categories["origin_connect_error"] != p.statuses[502] || p.statuses[502]+p.statuses[200] != n {
		t.Errorf("POSTs to the dead instance must fail with 502 origin_connect_error, not be retried: %v %v", p.statuses, p.categories)
	}
	if o.Budget().Allowed() != allowed {
		t.Errorf("POST spent retry budget: %d retries", o.Budget().Allowed()-allowed)
	}
	if got := good.hits.Load() - hits; got != int64(p.statuses[200]) {
		t.Errorf("live instance saw %d POSTs, clients got %d x 200", got, p.statuses[200])
	}
}

func TestOriginHedgedRequestsBeatSlowInstance(t *testing.T) {
	const slow, hedgeDelay = 400 * time.Millisecond, 30 * time.Millisecond
	ins := startLBInstances(t, 4, 2*time.Millisecond, 200)
	ins[0].delay.Store(int64(slow))
	// Round robin sends every fourth first attempt to the slow instance; the hedge
	// fires after 30ms to another instance. The budget covers a hedge per request.
	gw := startGateway(t, poolConfig(lbAddrs(ins),
		"    lb: round_robin\n    hedge: {delay: "+hedgeDelay.String()+"}\n"+
			"    retry: {budget: {ratio: 1, min_per_second: 10, window: 10s}}\n"))
	c := httpClient(t)
	const n = 80
	r := drive(c, "GET", "http://"+gw.addr+"/", 4, n)
	slowHits := ins[0].hits.Load()
	hedges := poolOrigin(t, gw, "pool").Budget().Allowed()
	late := r.countAbove(slow / 2)
	t.Logf("hedging at %v, one instance at %v: slow instance got %d first attempts, %d hedges, %d requests took >= %v; %v",
		hedgeDelay, slow, slowHits, hedges, late, slow/2, r)
	if r.statuses[200] != n || r.instances[ins[0].addr] > 1 {
		t.Errorf("statuses %v, answers by instance %v: the slow instance should lose its races", r.statuses, r.instances)
	}
	if slowHits < n/8 {
		t.Fatalf("slow instance got only %d requests; the test needs it to be picked", slowHits)
	}
	if int64(hedges) < slowHits {
		t.Errorf("%d hedges for %d slow first attempts", hedges, slowHits)
	}
	// Without hedging a quarter of the requests would take >= 400ms. Allow two
	// scheduler stalls on this shared machine.
	if late > 2 {
		t.Errorf("%d of %d requests took >= %v; hedged requests should finish near %v", late, n, slow/2, hedgeDelay)
	}
}

func TestOriginConsulDiscoveryThroughGateway(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	ins := startLBInstances(t, 3, 0, 200)
	register := func(i int) {
		host, port, _ := net.SplitHostPort(ins[i].addr)
		p, _ := strconv.Atoi(port)
		fake.Register("web", consulfake.Instance{ID: "web-" + strconv.Itoa(i), Node: "node-" + strconv.Itoa(i),
			NodeIP: host, Address: host, Port: p, Tags: []string{"edge"}, Passing: true})
	}
	register(0)
	register(1)
	// wait is far longer than the test: a change seen quickly was delivered by the
	// blocking query returning, not by a wait timeout and a fresh poll.
	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  web:
    consul: {address: %q, service: web, tag: edge, datacenter: dc1, wait: 5m, backoff_min: 20ms, backoff_max: 100ms}
    lb: round_robin
    timeouts: {connect: 500ms, response: 2s}
routes:
  - {name: web, match: {path_prefix: /}, origin: web}
`, fake.Addr()))
	o := poolOrigin(t, gw, "web")
	select {
	case <-o.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("no first answer from the fake Consul")
	}
	c := httpClient(t)
	url := "http://" + gw.addr + "/"

	// serving returns the set of instances that answered a batch of requests.
	serving := func() map[string]int {
		r := drive(c, "GET", url, 2, 12)
		if r.statuses[200] != 12 {
			t.Fatalf("statuses %v (errors %d, %v)", r.statuses, r.errs, r.firstErr)
		}
		return r.instances
	}
	// propagates applies change and waits (polling, with a deadline) until traffic
	// shows it; it checks that one blocking round trip carried it: the parked query
	// returned and at most one new query was issued.
	propagates := func(what string, change func(), want func(map[string]int) bool) {
		t.Helper()
		q0 := fake.Queries()
		t0 := time.Now()
		change()
		var last map[string]int
		eventually(t, 3*time.Second, what, func() bool {
			last = serving()
			return want(last)
		})
		took := time.Since(t0)
		// The parked query returned with the change; the watcher then parks exactly one
		// new query. Waiting for it also leaves the watcher parked for the next step.
		eventually(t, 2*time.Second, what+": watcher parked again", func() bool { return fake.Queries() > q0 })
		if dq := fake.Queries() - q0; dq != 1 {
			t.Errorf("%s: %d new queries, want 1 (one blocking round trip)", what, dq)
		}
		t.Logf("%s: visible in traffic after %v, one blocking round trip; serving %v", what, took.Round(time.Millisecond), last)
	}
	has := func(m map[string]int, i int) bool { return m[ins[i].addr] > 0 }

	if s := serving(); !has(s, 0) || !has(s, 1) || has(s, 2) {
		t.Fatalf("initial set: %v", s)
	}
	// The watcher must be parked on a blocking query before the changes start.
	eventually(t, 2*time.Second, "watcher parked", func() bool { return fake.Queries() >= 2 })

	propagates("instance added", func() { register(2) },
		func(m map[string]int) bool { return has(m, 0) && has(m, 1) && has(m, 2) })
	propagates("instance removed", func() { fake.Deregister("web", "web-0") },
		func(m map[string]int) bool { return !has(m, 0) && has(m, 1) && has(m, 2) })
	propagates("instance failing its check", func() { fake.SetPassing("web", "web-1", false) },
		func(m map[string]int) bool { return !has(m, 0) && !has(m, 1) && has(m, 2) })
	propagates("instance passing again", func() { fake.SetPassing("web", "web-1", true) },
		func(m map[string]int) bool { return !has(m, 0) && has(m, 1) && has(m, 2) })

	// Outage: the parked query is answered with 500, later ones too; the gateway
	// keeps the last set and keeps serving.
	q0 := fake.Queries()
	fake.SetOutage(consulfake.OutageError)
	eventually(t, 5*time.Second, "watcher retrying against the failing agent", func() bool { return fake.Queries() >= q0+3 })
	for i := 0; i < 3; i++ {
		if s := serving(); has(s, 0) || !has(s, 1) || !has(s, 2) {
			t.Fatalf("during the outage the gateway should serve the last set (1, 2): %v", s)
		}
	}
	if got := len(o.Instances()); got != 2 {
		t.Errorf("during the outage %d instances, want the last 2", got)
	}
	t.Logf("outage: %d failed queries (backoff), last set still served", fake.Queries()-q0)
	// A hung agent (accepts, never answers) must not stall anything either.
	fake.SetOutage(consulfake.OutageHang)
	for i := 0; i < 2; i++ {
		if s := serving(); has(s, 0) || !has(s, 1) || !has(s, 2) {
			t.Fatalf("while the agent hangs the gateway should serve the last set (1, 2): %v", s)
		}
	}
	fake.SetOutage(consulfake.OutageNone)
	// After the outage the watcher resumes (after at most one backoff) and changes
	// flow again.
	register(0)
	eventually(t, 3*time.Second, "change after the outage", func() bool {
		s := serving()
		return has(s, 0) && has(s, 1) && has(s, 2)
	})
}

// When no other instance is left to retry on, the client must get the origin's own
// answer (here a 503 with Retry-After), and no retry budget may be spent on a retry
// that was never sent. Known bug in proxy/forward.go (sequential spends the budget
// and then synthesises a 502 when the retry pick fails); see the issue 4 report.
func TestOriginRetryWithNoOtherInstanceKeepsOriginAnswer(t *testing.T) {
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Retry-After", "7")
		ctx.SetStatusCode(503)
		ctx.SetBodyString("busy")
	})
	for _, tc := range []struct{ name, extra string }{
		{"sequential", ""},
		{"hedged", "    hedge: {delay: 1s}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := startGateway(t, poolConfig([]string{o.addr}, tc.extra))
			resp, _ := getOnce(t, httpClient(t), "http://"+gw.addr+"/")
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" || resp.Header.Get("X-Floodgate-Status") != "origin_5xx" {
				t.Errorf("client got %d Retry-After %q %q, want the origin's 503 with Retry-After 7 (origin_5xx)",
					resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("X-Floodgate-Status"))
			}
			if a := poolOrigin(t, gw, "pool").Budget().Allowed(); a != 0 {
				t.Errorf("retry budget charged %d for a retry that had no instance to go to", a)
			}
		})
	}
}

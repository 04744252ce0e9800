package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Fleet-wide limits (issue 14): several gateway processes share one Redis
// (or Redis Cluster); these helpers start the fleet, offer paced load over
// it and read each gateway's metrics.

// fleetSpec configures the gateways of a fleet test.
type fleetSpec struct {
	origin      string
	redisAddrs  []string
	cluster     bool
	rate        float64
	burst       int
	concurrency int
	lease       time.Duration
	timeout     time.Duration
}

func (s fleetSpec) yaml() string {
	addrs := make([]string, len(s.redisAddrs))
	for i, a := range s.redisAddrs {
		addrs[i] = strconv.Quote(a)
	}
	timeout := s.timeout
	if timeout == 0 {
		timeout = 50 * time.Millisecond
	}
	lease := s.lease
	if lease == 0 {
		lease = 2 * time.Second
	}
	conc := s.concurrency
	if conc == 0 {
		conc = 5
	}
	rate, burst := s.rate, s.burst
	if rate == 0 {
		rate, burst = 1000, 1000
	}
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
access_log: {enabled: false}
origins:
  backend:
    instances: [{address: %q}]
    timeouts: {connect: 1s, response: 30s}
rate_limit:
  redis:
    addrs: [%s]
    cluster: %v
    timeout: %s
    breaker: {failures: 3, open_for: 300ms}
  policies:
    - {name: fleet, rate: %v, burst: %d, key: ["header:X-Client"], backend: redis}
  concurrency:
    - {name: slots, max: %d, key: ["header:X-Client"], backend: redis, lease: %s}
routes:
  - name: limited
    match: {path_prefix: /r}
    rewrite: {strip_prefix: /r}
    origin: backend
    filters: [{name: rate_limit, options: {policy: fleet}}]
  - name: slots
    match: {path_prefix: /c}
    rewrite: {strip_prefix: /c}
    origin: backend
    filters: [{name: concurrency_limit, options: {policy: slots}}]
`, s.origin, strings.Join(addrs, ", "), s.cluster, timeout, rate, burst, conc, lease)
}

// startFleet runs n gateway processes with the same config.
func startFleet(t *testing.T, n int, spec fleetSpec) []*proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, spec.yaml())
	out := make([]*proc, n)
	for i := range out {
		out[i] = startProcess(t, path)
	}
	return out
}

// slotOrigin answers /slow after a delay and holds /hold until released,
// counting requests in flight and their peak.
type slotOrigin struct {
	*origin
	inFlight, peak atomic.Int64
	delay          time.Duration
	hold           chan struct{}
}

func startSlotOrigin(t *testing.T, delay time.Duration) *slotOrigin {
	t.Helper()
	o := &slotOrigin{delay: delay, hold: make(chan struct{})}
	o.origin = startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		n := o.inFlight.Add(1)
		defer o.inFlight.Add(-1)
		for {
			p := o.peak.Load()
			if n <= p || o.peak.CompareAndSwap(p, n) {
				break
			}
		}
		switch string(ctx.Path()) {
		case "/slow":
			time.Sleep(o.delay) // the origin's service time
		case "/hold":
			<-o.hold
		}
		ctx.SetBodyString("ok")
	})
	// Runs before the origin's own cleanup (LIFO), so Shutdown does not
	// wait for held requests.
	t.Cleanup(func() { close(o.hold) })
	return o
}

// fleetResult counts what the clients saw, overall, per gateway and per
// second of the run.
type fleetResult struct {
	mu          sync.Mutex
	statuses    map[int]int
	perGateway  []map[int]int
	perSecond   []map[int]int
	errs        int
	firstErr    error
	first, last time.Time
	maxLatency  time.Duration
}

func (r *fleetResult) admitted() int { return r.statuses[http.StatusOK] }

// failures are answers other than 200 and 429, and transport errors.
func (r *fleetResult) failures() int {
	n := r.errs
	for s, c := range r.statuses {
		if s != http.StatusOK && s != http.StatusTooManyRequests {
			n += c
		}
	}
	return n
}

func (r *fleetResult) window() time.Duration { return r.last.Sub(r.first) }

func (r *fleetResult) String() string {
	return fmt.Sprintf("window %v: statuses %v, per gateway %v, errors %d (first %v), max latency %v",
		r.window().Round(time.Millisecond), r.statuses, r.perGateway, r.errs, r.firstErr, r.maxLatency.Round(time.Microsecond))
}

// offerPaced sends requests for path with X-Client: client at a steady
// total rate for d, round robin over the gateways, from a pool of workers
// (open loop: a slow answer does not slow the offered rate).
func offerPaced(c *http.Client, gws []*proc, path, client string, rate float64, d time.Duration) *fleetResult {
	res := &fleetResult{statuses: map[int]int{}}
	for range gws {
		res.perGateway = append(res.perGateway, map[int]int{})
	}
	period := time.Duration(float64(time.Second) / rate)
	total := int(d / period)
	type job struct {
		gw int
		at time.Time
	}
	jobs := make(chan job, total)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for j := range jobs {
				req, _ := http.NewRequest(http.MethodGet, "http://"+gws[j.gw].addr+path, nil)
				req.Header.Set("X-Client", client)
				t0 := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat := time.Since(t0)
				sec := int(j.at.Sub(res.first) / time.Second)
				res.mu.Lock()
				res.maxLatency = max(res.maxLatency, lat)
				if err != nil {
					res.errs++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					res.statuses[resp.StatusCode]++
					res.perGateway[j.gw][resp.StatusCode]++
					for len(res.perSecond) <= sec {
						res.perSecond = append(res.perSecond, map[int]int{})
					}
					res.perSecond[sec][resp.StatusCode]++
				}
				res.mu.Unlock()
			}
		})
	}
	start := time.Now()
	res.first = start
	for i := range total {
		at := start.Add(time.Duration(i) * period)
		time.Sleep(time.Until(at)) // pacing the offered load
		res.last = at
		jobs <- job{gw: i % len(gws), at: at}
	}
	close(jobs)
	wg.Wait()
	return res
}

// metric reads one sample of a gateway's /metrics: the value of the first
// line starting with series (name plus labels, as exposed).
func metric(t *testing.T, c *http.Client, gw *proc, series string) (float64, bool) {
	t.Helper()
	resp, err := c.Get("http://" + gw.adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// awaitRedisDecisions sends a probe request to each gateway until each
// reports its Redis breaker closed, i.e. decides in Redis again.
func awaitRedisDecisions(t *testing.T, c *http.Client, gws []*proc, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for i, gw := range gws {
		for {
			req, _ := http.NewRequest(http.MethodGet, "http://"+gw.addr+"/r/", nil)
			req.Header.Set("X-Client", "probe-"+strconv.Itoa(i))
			if resp, err := c.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if v, ok := metric(t, c, gw, "floodgate_rate_limit_redis_breaker_state"); ok && v == 0 {
				break
			}
			if time.Since(start) > within {
				t.Fatalf("gateway %d still deciding locally %v after Redis came back", i, within)
			}
			time.Sleep(20 * time.Millisecond) // pacing the probes
		}
	}
	return time.Since(start)
}

// fleetExperiment skips unless experiments are asked for.
func fleetExperiment(t *testing.T) {
	t.Helper()
	if os.Getenv("FLOODGATE_EXPERIMENT") != "1" {
		t.Skip("fleet experiment; run with: FLOODGATE_EXPERIMENT=1 go test ./test -run 'FleetExperiment' -v -count=1")
	}
}

func perSecondAdmitted(r *fleetResult) []int {
	out := make([]int, len(r.perSecond))
	for i, m := range r.perSecond {
		out[i] = m[http.StatusOK]
	}
	return out
}

package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
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

// Issue 18 items 1-2 through the gateway: origin groups failing over and
// back, and outlier ejection, with real fasthttp instances on loopback,
// clients sending through an in-process gateway, and transitions awaited as
// the origins package reports them (hooks), never slept for.

// killable is an origin instance a test can stop (its port refuses
// connections) and start again on the same address.
type killable struct {
	name string
	addr string
	hits atomic.Int64

	mu   sync.Mutex
	srv  *fasthttp.Server
	done chan struct{}
}

func startKillable(t *testing.T, name string) *killable {
	t.Helper()
	k := &killable{name: name}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = ln.Addr().String()
	k.serve(ln)
	t.Cleanup(k.stop)
	return k
}

func (k *killable) serve(ln net.Listener) {
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/healthz" {
			k.hits.Add(1)
		}
		ctx.Response.Header.Set("X-Instance", k.name)
		ctx.SetBodyString("ok")
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	k.mu.Lock()
	k.srv, k.done = srv, done
	k.mu.Unlock()
}

// stop shuts the instance down: in-flight requests finish, idle
// connections close, new ones are refused.
func (k *killable) stop() {
	k.mu.Lock()
	srv, done := k.srv, k.done
	k.srv = nil
	k.mu.Unlock()
	if srv != nil {
		_ = srv.Shutdown()
		<-done
	}
}

func (k *killable) restart(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", k.addr)
	if err != nil {
		t.Fatalf("restarting %s on %s: %v", k.name, k.addr, err)
	}
	k.serve(ln)
}

// served is one client request's end.
type served struct {
	at       time.Time // when the answer (or error) arrived
	instance string
	status   int
	err      error
}

// clients send GETs to url from n closed-loop workers until stopped.
type clients struct {
	mu     sync.Mutex
	log    []served
	stopCh chan struct{}
	wg     sync.WaitGroup
}

func startClients(t *testing.T, url string, n int) *clients {
	c := &clients{stopCh: make(chan struct{})}
	hc := httpClient(t)
	for i := 0; i < n; i++ {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-c.stopCh:
					return
				default:
				}
				s := served{}
				resp, err := hc.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.status, s.instance = resp.StatusCode, resp.Header.Get("X-Instance")
				}
				s.at, s.err = time.Now(), err
				c.mu.Lock()
				c.log = append(c.log, s)
				c.mu.Unlock()
			}
		}()
	}
	t.Cleanup(c.stop)
	return c
}

func (c *clients) stop() {
	select {
	case <-c.stopCh:
	default:
		close(c.stopCh)
	}
	c.wg.Wait()
}

func (c *clients) snapshot() []served {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]served(nil), c.log...)
}

// failures lists the requests that did not get a 200.
func failures(log []served) []served {
	var out []served
	for _, s := range log {
		if s.err != nil || s.status != http.StatusOK {
			out = append(out, s)
		}
	}
	return out
}

// awaitServed waits until the clients have had n answers from instance
// prefix after since.
func (c *clients) awaitServed(t *testing.T, prefix string, since time.Time, n int) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d answers from %s", n, prefix), func() bool {
		got := 0
		for _, s := range c.snapshot() {
			if s.at.After(since) && strings.HasPrefix(s.instance, prefix) {
				got++
			}
		}
		return got >= n
	})
}

type failoverEvent struct {
	from, to, reason string
	at               time.Time
}

func awaitFailover(t *testing.T, ch <-chan failoverEvent, from, to string, within time.Duration) failoverEvent {
	t.Helper()
	select {
	case ev := <-ch:
		if ev.from != from || ev.to != to {
			t.Fatalf("failover %s -> %s (%s), want %s -> %s", ev.from, ev.to, ev.reason, from, to)
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no failover %s -> %s within %v", from, to, within)
	}
	return failoverEvent{}
}

func TestOriginGroupFailsOverWithNoFailedRequestAndFailsBackAfterTheHold(t *testing.T) {
	east := []*killable{startKillable(t, "east-1"), startKillable(t, "east-2")}
	west := []*killable{startKillable(t, "west-1"), startKillable(t, "west-2")}
	const (
		hcInterval = 500 * time.Millisecond
		hold       = 2 * time.Second
	)
	cfg := fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  east:
    instances: [{address: %q}, {address: %q}]
    timeouts: {connect: 500ms, response: 5s}
    health_check: {interval: %s, timeout: 250ms, unhealthy_threshold: 1, healthy_threshold: 1}
    breaker: {open_timeout: 1s}
  west:
    instances: [{address: %q}, {address: %q}]
    timeouts: {connect: 500ms, response: 5s}
    health_check: {interval: %s, timeout: 250ms, unhealthy_threshold: 1, healthy_threshold: 1}
origin_groups:
  - name: api
    origins: [east, west]
    failover: {failback_after: %s}
    cross_origin_retries: true
routes:
  - {name: api, match: {path_prefix: /}, origin_group: api}
`, east[0].addr, east[1].addr, hcInterval, west[0].addr, west[1].addr, hcInterval, hold)
	events := make(chan failoverEvent, 16)
	gw := startGatewayObserved(t, cfg, origins.Hooks{OnFailover: func(_, from, to, reason string) {
		events <- failoverEvent{from, to, reason, time.Now()}
	}})
	group, ok := gw.reg.Group("api")
	if !ok || group.Active().Name() != "east" {
		t.Fatalf("group api: %+v", group.Status())
	}
	cl := startClients(t, "http://"+gw.addr+"/items", 4)
	start := time.Now()
	cl.awaitServed(t, "east-", start, 200)

	// The primary loses every instance while the clients keep sending.
	lost := time.Now()
	for _, k := range east {
		k.stop()
	}
	ev := awaitFailover(t, events, "east", "west", 10*time.Second)
	failoverAfter := ev.at.Sub(lost)
	t.Logf("failover %s after the loss (reason %s); health-check interval %v", failoverAfter.Round(time.Millisecond), ev.reason, hcInterval)
	// Within one health-check interval (the traffic's own failures open the
	// breakers sooner); the slack is for this shared 2-core machine.
	if failoverAfter > hcInterval+500*time.Millisecond {
		t.Errorf("failover took %v, want within one health-check interval (%v) plus 500ms", failoverAfter, hcInterval)
	}
	cl.awaitServed(t, "west-", ev.at, 200)
	if st := group.Status(); st.Active != "west" || st.Members[0].Healthy {
		t.Fatalf("after the loss: %+v", st)
	}

	// The primary comes back. The group must wait for it to be healthy
	// continuously for the hold before sending traffic back.
	back := time.Now()
	for _, k := range east {
		k.restart(t)
	}
	fb := awaitFailover(t, events, "west", "east", 15*time.Second)
	if fb.reason != origins.ReasonFailback {
		t.Errorf("failback reason %q", fb.reason)
	}
	cl.awaitServed(t, "east-", fb.at, 200)
	cl.stop()
	st := group.Status()
	if st.Active != "east" || st.Members[0].HealthySince == nil {
		t.Fatalf("after failback: %+v", st)
	}
	healthy := *st.Members[0].HealthySince
	t.Logf("primary back at +%v, judged healthy at +%v, failback at +%v (hold %v)",
		back.Sub(start).Round(time.Millisecond), healthy.Sub(start).Round(time.Millisecond), fb.at.Sub(start).Round(time.Millisecond), hold)
	if fb.at.Before(healthy.Add(hold)) {
		t.Errorf("failed back %v after the primary turned healthy, before the hold of %v", fb.at.Sub(healthy), hold)
	}
	if late := fb.at.Sub(healthy.Add(hold)); late > 500*time.Millisecond {
		t.Errorf("failed back %v after the hold ended", late)
	}

	log := cl.snapshot()
	var eastAfterBack, westBeforeLoss int
	for _, s := range log {
		if strings.HasPrefix(s.instance, "east-") && s.at.After(back) {
			eastAfterBack++
			// Not before: nothing the primary answered after its return
			// arrived before the hold was over.
			if s.at.Before(healthy.Add(hold)) {
				t.Errorf("east answered at +%v, before the hold ended at +%v", s.at.Sub(start), healthy.Add(hold).Sub(start))
			}
		}
		if strings.HasPrefix(s.instance, "west-") && s.at.Before(lost) {
			westBeforeLoss++
		}
	}
	if westBeforeLoss > 0 {
		t.Errorf("west answered %d requests while east was healthy", westBeforeLoss)
	}
	bad := failures(log)
	t.Logf("clients: %d requests, %d failed; east served %d after its return", len(log), len(bad), eastAfterBack)
	for i, s := range bad {
		if i < 5 {
			t.Errorf("failed request at +%v: status %d, err %v", s.at.Sub(start), s.status, s.err)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d idempotent requests failed during failover and failback, want 0", len(bad))
	}
	if f := group.Failovers(); f[origins.FailoverKey{From: "east", To: "west", Reason: ev.reason}] != 1 || f[origins.FailoverKey{From: "west", To: "east", Reason: origins.ReasonFailback}] != 1 {
		t.Errorf("failover counts %v", f)
	}
}

// hookSkew bounds how much later than the decision it reports a hook's
// timestamp is taken (a log line and a channel send, on a goroutine that
// may wait for a core: 13 ms was seen on a loaded 2-core CI machine). An
// early readmission is a whole outlier interval (200 ms here) early, so
// this bound still catches one.
const hookSkew = 50 * time.Millisecond

type outlierChange struct {
	instance string
	ejected  bool
	reason   string
	at       time.Time
}

func awaitOutlier(t *testing.T, ch <-chan outlierChange, instance string, ejected bool, within time.Duration) outlierChange {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-ch:
			if ev.instance == instance && ev.ejected == ejected {
				return ev
			}
			t.Logf("outlier change %+v (waiting for %s ejected=%v)", ev, instance, ejected)
		case <-deadline:
			t.Fatalf("%s: no ejected=%v within %v", instance, ejected, within)
		}
	}
}

// outlierPoolConfig is three instances with outlier detection on: a 500
// costs no latency penalty and never opens the breaker, so only outlier
// detection keeps traffic off a fast-failing instance.
func outlierPoolConfig(addrs []string, detection string) string {
	return poolConfig(addrs, "    lb: p2c\n    latency: {failure_penalty: 0s, decay: 1s}\n"+
		"    breaker: {consecutive_failures: 1000000, failure_ratio: 0}\n"+
		"    outlier_detection: "+detection+"\n")
}

func TestOutlierInstanceIsEjectedAndReadmittedThroughTheGateway(t *testing.T) {
	ins := startLBInstances(t, 3, time.Millisecond, 200)
	bad := ins[0]
	bad.delay.Store(0)
	bad.status.Store(500)
	const base = time.Second
	changes := make(chan outlierChange, 16)
	gw := startGatewayObserved(t, outlierPoolConfig(lbAddrs(ins),
		fmt.Sprintf("{enabled: true, consecutive_5xx: 3, base_ejection_time: %s, interval: 200ms}", base)),
		origins.Hooks{OnOutlierChange: func(_, instance string, ejected bool, reason string) {
			changes <- outlierChange{instance, ejected, reason, time.Now()}
		}})
	cl := startClients(t, "http://"+gw.addr+"/", 4)
	ej := awaitOutlier(t, changes, bad.addr, true, 10*time.Second)
	hitsAtEjection := bad.hits.Load()
	if ej.reason != origins.EjectConsecutive5xx {
		t.Errorf("ejection reason %q", ej.reason)
	}
	// Three 500s in a row eject it; attempts already in flight may land.
	if hitsAtEjection < 3 || hitsAtEjection > 3+4 {
		t.Errorf("the failing instance got %d requests before its ejection, want 3..7", hitsAtEjection)
	}
	bad.status.Store(200) // it recovers while out; readmission shows it
	back := awaitOutlier(t, changes, bad.addr, false, 10*time.Second)
	hitsAtReadmission := bad.hits.Load()
	out := back.at.Sub(ej.at)
	t.Logf("ejected for %v (base_ejection_time %v); hits %d at ejection, %d at readmission",
		out.Round(time.Millisecond), base, hitsAtEjection, hitsAtReadmission)
	// The hooks' timestamps come a moment after the decisions they report
	// (the ejection's clock reading is earlier than its hook's): hookSkew.
	if out < base-hookSkew {
		t.Errorf("readmitted after %v, before base_ejection_time %v", out, base)
	}
	if out > base+500*time.Millisecond {
		t.Errorf("readmitted %v after ejection, want about %v", out, base)
	}
	// While out it got nothing but the requests in flight at the ejection.
	if extra := hitsAtReadmission - hitsAtEjection; extra > 4 {
		t.Errorf("the ejected instance got %d requests while out", extra)
	}
	eventually(t, 10*time.Second, "traffic to the readmitted instance", func() bool { return bad.hits.Load() > hitsAtReadmission+50 })
	cl.stop()
	if bad := failures(cl.snapshot()); len(bad) > 7 {
		t.Errorf("%d requests failed, want only the 500s before the ejection", len(bad))
	}
	o := poolOrigin(t, gw, "pool")
	if c := o.OutlierCounts(); c.Ejections[origins.EjectConsecutive5xx] != 1 || c.Ejected != 0 {
		t.Errorf("outlier counts %+v", c)
	}
}

func TestOutlierEjectionNeverExceedsTheMaxShare(t *testing.T) {
	ins := startLBInstances(t, 3, time.Millisecond, 200)
	for _, in := range ins[:2] {
		in.delay.Store(0)
		in.status.Store(500)
	}
	changes := make(chan outlierChange, 64)
	var mu sync.Mutex
	out, maxOut := map[string]bool{}, 0
	gw := startGatewayObserved(t, outlierPoolConfig(lbAddrs(ins),
		"{enabled: true, consecutive_5xx: 3, base_ejection_time: 1s, max_ejection_percent: 50, interval: 200ms}"),
		origins.Hooks{OnOutlierChange: func(_, instance string, ejected bool, reason string) {
			mu.Lock()
			out[instance] = ejected
			n := 0
			for _, e := range out {
				if e {
					n++
				}
			}
			maxOut = max(maxOut, n)
			mu.Unlock()
			changes <- outlierChange{instance, ejected, reason, time.Now()}
		}})
	o := poolOrigin(t, gw, "pool")
	cl := startClients(t, "http://"+gw.addr+"/", 4)
	first := <-changes
	if !first.ejected {
		t.Fatalf("first change %+v", first)
	}
	other := ins[0]
	if other.addr == first.instance {
		other = ins[1]
	}
	// The other failing instance stays in (50% of 3 is one) and keeps
	// taking traffic while the first is out.
	before := other.hits.Load()
	eventually(t, 10*time.Second, "traffic to the second failing instance", func() bool { return other.hits.Load() > before+20 })
	eventually(t, 10*time.Second, "a refused ejection", func() bool { return o.OutlierCounts().Skipped > 0 })
	// Once the first is readmitted the second may go, never both at once.
	awaitOutlier(t, changes, first.instance, false, 10*time.Second)
	awaitOutlier(t, changes, other.addr, true, 10*time.Second)
	cl.stop()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("max ejected at once %d of 3; counts %+v", maxOut, o.OutlierCounts())
	if maxOut != 1 {
		t.Errorf("%d instances were ejected at once, want at most 1 (max_ejection_percent 50 of 3)", maxOut)
	}
	if c := o.OutlierCounts(); c.Ejected > 1 {
		t.Errorf("ejected now: %d", c.Ejected)
	}
}

// The gateway process wires groups and outlier detection to its admin API,
// metrics and logs.
func TestGroupAndOutlierStateInAdminAndMetricsOfTheProcess(t *testing.T) {
	east, west := startKillable(t, "east-1"), startKillable(t, "west-1")
	pool := startLBInstances(t, 3, time.Millisecond, 200)
	pool[0].delay.Store(0)
	pool[0].status.Store(500)
	cfg := fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"} # loopback: no token, so metricValue can scrape
origins:
  east:
    instances: [{address: %q}]
    health_check: {interval: 200ms, timeout: 200ms, unhealthy_threshold: 1}
  west:
    instances: [{address: %q}]
  pool:
    instances: [{address: %q}, {address: %q}, {address: %q}]
    latency: {failure_penalty: 0s}
    breaker: {consecutive_failures: 1000000, failure_ratio: 0}
    outlier_detection: {enabled: true, consecutive_5xx: 3, base_ejection_time: 1m}
origin_groups:
  - {name: api, origins: [east, west], failover: {failback_after: 1h}}
routes:
  - {name: pool, match: {path_prefix: /pool}, origin: pool}
  - {name: api, match: {path_prefix: /}, origin_group: api}
`, east.addr, west.addr, pool[0].addr, pool[1].addr, pool[2].addr)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, cfg)
	p := startProcess(t, path)
	c := httpClient(t)
	if resp, _ := getOnce(t, c, "http://"+p.addr+"/x"); resp.Header.Get("X-Instance") != "east-1" {
		t.Fatalf("served by %q, want east-1", resp.Header.Get("X-Instance"))
	}
	east.stop()
	ev := p.waitFor(t, "origin group failed over", 10*time.Second)
	if ev["group"] != "api" || ev["from"] != "east" || ev["to"] != "west" || ev["reason"] != origins.ReasonNoEligibleInstances {
		t.Fatalf("failover log %v", ev)
	}
	if resp, _ := getOnce(t, c, "http://"+p.addr+"/x"); resp.Header.Get("X-Instance") != "west-1" {
		t.Fatalf("served by %q after the failover, want west-1", resp.Header.Get("X-Instance"))
	}
	_, body := adminGet(t, c, "http://"+p.adminAddr+"/admin/origin_groups", "")
	var groups []origins.GroupStatus
	if err := json.Unmarshal(body, &groups); err != nil {
		t.Fatalf("/admin/origin_groups: %v: %s", err, body)
	}
	if len(groups) != 1 || groups[0].Active != "west" || groups[0].Why == "" || len(groups[0].Members) != 2 ||
		groups[0].Members[0].Healthy || groups[0].Members[0].Reason != origins.ReasonNoEligibleInstances || !groups[0].Members[1].Active {
		t.Errorf("/admin/origin_groups: %s", body)
	}

	// Three 500s in a row eject pool's failing instance.
	for i := 0; i < 60 && pool[0].hits.Load() < 3; i++ {
		getOnce(t, c, "http://"+p.addr+"/pool")
	}
	ej := p.waitFor(t, "outlier instance ejected", 10*time.Second)
	if ej["instance"] != pool[0].addr || ej["reason"] != origins.EjectConsecutive5xx {
		t.Fatalf("ejection log %v", ej)
	}
	_, body = adminGet(t, c, "http://"+p.adminAddr+"/admin/origins", "")
	var view map[string]struct {
		Instances []struct {
			Address string `json:"address"`
			Outlier *struct {
				Ejected bool   `json:"ejected"`
				Reason  string `json:"reason"`
			} `json:"outlier"`
		} `json:"instances"`
		Outliers *struct {
			Ejected int `json:"ejected"`
		} `json:"outlier_detection"`
	}
	if err := json.Unmarshal(body, &view); err != nil {
		t.Fatalf("/admin/origins: %v: %s", err, body)
	}
	if v := view["pool"]; v.Outliers == nil || v.Outliers.Ejected != 1 {
		t.Errorf("/admin/origins pool: %s", body)
	}
	for _, in := range view["pool"].Instances {
		if in.Outlier == nil || in.Outlier.Ejected != (in.Address == pool[0].addr) {
			t.Errorf("instance %s outlier state %+v", in.Address, in.Outlier)
		}
	}
	if view["east"].Outliers != nil {
		t.Errorf("east has no outlier detection, admin shows %s", body)
	}

	for series, want := range map[string]float64{
		`floodgate_origin_group_active{group="api",origin="east"}`:                                                 0,
		`floodgate_origin_group_active{group="api",origin="west"}`:                                                 1,
		`floodgate_origin_group_failovers_total{from="east",group="api",reason="no_eligible_instances",to="west"}`: 1,
		`floodgate_origin_outlier_ejections_total{origin="pool",reason="consecutive_5xx"}`:                         1,
		`floodgate_origin_instances_ejected{origin="pool"}`:                                                        1,
	} {
		if got := metricValue(t, p.adminAddr, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// A slow instance (10x its peers) is ejected by the latency rule and
// readmitted after its ejection time. Round robin gives it its share of
// the traffic, so each interval has the samples the rule needs.
func TestSlowOutlierIsEjectedByLatencyAndReadmitted(t *testing.T) {
	ins := startLBInstances(t, 3, 5*time.Millisecond, 200)
	slow := ins[2]
	slow.delay.Store(int64(80 * time.Millisecond))
	changes := make(chan outlierChange, 16)
	gw := startGatewayObserved(t, poolConfig(lbAddrs(ins), "    lb: round_robin\n"+
		"    outlier_detection: {enabled: true, consecutive_5xx: 0, interval: 300ms, base_ejection_time: 1s,"+
		" latency: {factor: 3, min_difference: 20ms, min_hosts: 3, min_requests: 3}}\n"),
		origins.Hooks{OnOutlierChange: func(_, instance string, ejected bool, reason string) {
			changes <- outlierChange{instance, ejected, reason, time.Now()}
		}})
	cl := startClients(t, "http://"+gw.addr+"/", 4)
	ej := awaitOutlier(t, changes, slow.addr, true, 10*time.Second)
	if ej.reason != origins.EjectLatency {
		t.Errorf("ejection reason %q, want latency", ej.reason)
	}
	hits := slow.hits.Load()
	back := awaitOutlier(t, changes, slow.addr, false, 10*time.Second)
	hitsBack := slow.hits.Load()
	cl.stop()
	t.Logf("slow instance out for %v", back.at.Sub(ej.at).Round(time.Millisecond))
	if out := back.at.Sub(ej.at); out < time.Second-hookSkew || out > 1500*time.Millisecond {
		t.Errorf("out for %v, want its 1s ejection time", out)
	}
	// Only requests already on their way when it was ejected reached it.
	if extra := hitsBack - hits; extra > 4 {
		t.Errorf("the ejected instance got %d requests while out", extra)
	}
	if bad := failures(cl.snapshot()); len(bad) > 0 {
		t.Errorf("%d requests failed", len(bad))
	}
}

// The primary loses every instance in discovery (all its Consul checks
// fail, and consul.allow_empty applies the empty answer): the blocking
// query's return fails the group over at once, and the instances then
// dying fails no request (one picked on east just before the loss is
// retried on west: cross_origin_retries).
func TestOriginGroupFailsOverWhenDiscoveryLosesThePrimary(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	east := []*killable{startKillable(t, "east-1"), startKillable(t, "east-2")}
	west := startKillable(t, "west-1")
	for i, k := range east {
		host, port, _ := net.SplitHostPort(k.addr)
		p, _ := strconv.Atoi(port)
		fake.Register("east", consulfake.Instance{ID: k.name, Node: "node-" + strconv.Itoa(i), NodeIP: host,
			Address: host, Port: p, Passing: true})
	}
	events := make(chan failoverEvent, 16)
	gw := startGatewayObserved(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  east:
    consul: {address: %q, service: east, datacenter: dc1, wait: 5m, allow_empty: true, backoff_min: 20ms, backoff_max: 100ms}
  west:
    instances: [{address: %q}]
origin_groups:
  - {name: api, origins: [east, west], failover: {failback_after: 1s}, cross_origin_retries: true}
routes:
  - {name: api, match: {path_prefix: /}, origin_group: api}
`, fake.Addr(), west.addr), origins.Hooks{OnFailover: func(_, from, to, reason string) {
		events <- failoverEvent{from, to, reason, time.Now()}
	}})
	eastOrigin := poolOrigin(t, gw, "east")
	select {
	case <-eastOrigin.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("no first answer from the fake Consul")
	}
	// Before discovery's first answer east is pending and west may take
	// the traffic; east's answer moves it back at once (east never failed),
	// which the clients below see.
	cl := startClients(t, "http://"+gw.addr+"/", 4)
	start := time.Now()
	cl.awaitServed(t, "east-", start, 100)

	lost := time.Now()
	// The start-up move, if there was one, is no failover to wait for.
	for drained := false; !drained; {
		select {
		case ev := <-events:
			if ev.from != "west" || ev.to != "east" || ev.reason != origins.ReasonDiscovered {
				t.Fatalf("before the loss: %+v", ev)
			}
		default:
			drained = true
		}
	}
	fake.SetAllPassing("east", false)
	ev := awaitFailover(t, events, "east", "west", 5*time.Second)
	t.Logf("failover %v after discovery lost the primary (reason %s)", ev.at.Sub(lost).Round(time.Millisecond), ev.reason)
	if ev.reason != origins.ReasonNoInstances {
		t.Errorf("reason %q, want no_instances", ev.reason)
	}
	// One blocking round trip, not a discovery interval of polling.
	if d := ev.at.Sub(lost); d > 500*time.Millisecond {
		t.Errorf("failover %v after the loss, want one blocking query's return", d)
	}
	for _, k := range east {
		k.stop()
	}
	cl.awaitServed(t, "west-", ev.at, 200)
	cl.stop()
	if bad := failures(cl.snapshot()); len(bad) > 0 {
		t.Errorf("%d of %d requests failed (first: status %d, %v)", len(bad), len(cl.snapshot()), bad[0].status, bad[0].err)
	}
}

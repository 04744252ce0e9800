package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const shedAdminToken = "shed-admin-token"

// shedOrigin is a real fasthttp origin that counts requests per path and
// holds /hold requests until released, so a test can keep the gateway's
// in-flight count where it wants it.
type shedOrigin struct {
	*origin
	mu      sync.Mutex
	hits    map[string]int
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func startShedOrigin(t *testing.T) *shedOrigin {
	t.Helper()
	so := &shedOrigin{hits: map[string]int{}, entered: make(chan struct{}, 64), release: make(chan struct{})}
	so.origin = startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		p := string(ctx.Path())
		so.mu.Lock()
		so.hits[p]++
		so.mu.Unlock()
		if p == "/hold" {
			so.entered <- struct{}{}
			<-so.release
		}
		ctx.SetBodyString("ok")
	})
	// Registered after startOrigin, so it runs before the origin's
	// shutdown, which waits for held handlers.
	t.Cleanup(so.unblock)
	return so
}

func (so *shedOrigin) unblock() { so.once.Do(func() { close(so.release) }) }

func (so *shedOrigin) count(path string) int {
	so.mu.Lock()
	defer so.mu.Unlock()
	return so.hits[path]
}

// shedGatewayConfig routes everything to one origin "app" and adds the
// given loadshed section (indented under `loadshed:`).
func shedGatewayConfig(originAddr, loadshed string) string {
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0", token: %q}
access_log: {enabled: false}
origins:
  app:
    instances: [{address: %q}]
routes:
  - name: app
    match: {path_prefix: /}
    origin: app
loadshed:
%s`, shedAdminToken, originAddr, loadshed)
}

// shedRules scores /low* 90 and /crit* 10; everything else keeps the
// default 50. Signals are crisp (no smoothing or hysteresis, the
// proportional controller) and only the global in-flight signal is live,
// so a test sets the overload exactly.
func shedLoadshedSection(dryRun bool, threshold, max int, chaos string) string {
	return fmt.Sprintf(`  interval: 10ms
  scoring:
    rules:
      - {name: low, match: {path_prefixes: [/low]}, set: 90}
      - {name: crit, match: {path_prefixes: [/crit]}, set: 10}
  global:
    dry_run: %v
    hysteresis: 0
    smoothing: {rise: 0s, fall: 0s}
    controller: {mode: proportional}
    signals:
      inflight: {enabled: true, threshold: %d, max: %d}
      connections: {enabled: false}
      cpu: {enabled: false}
  chaos: %s
`, dryRun, threshold, max, chaos)
}

// shedAdminView is the part of /admin/shed these tests read.
type shedAdminView struct {
	Global struct {
		DryRun    bool              `json:"dry_run"`
		Cutoff    float64           `json:"cutoff"`
		Inflight  int64             `json:"in_flight"`
		Shed      map[string]uint64 `json:"shed"`
		WouldShed map[string]uint64 `json:"would_shed"`
	} `json:"global"`
	Origins []struct {
		Name string            `json:"name"`
		Shed map[string]uint64 `json:"shed"`
	} `json:"origins"`
	Chaos map[string]uint64 `json:"chaos"`
}

func shedAdmin(t *testing.T, c *http.Client, adminAddr string) shedAdminView {
	t.Helper()
	resp, body := adminGet(t, c, "http://"+adminAddr+"/admin/shed", shedAdminToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/admin/shed: %d %s", resp.StatusCode, body)
	}
	var v shedAdminView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("/admin/shed: %v in %s", err, body)
	}
	return v
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// shedGet sends one GET with headers given as name, value pairs.
func shedGet(c *http.Client, url string, headers ...string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func mustShedGet(t *testing.T, c *http.Client, url string, headers ...string) *http.Response {
	t.Helper()
	resp, err := shedGet(c, url, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// criticalStream sends score-10 requests back to back until stopped and
// records every one that did not succeed.
type criticalStream struct {
	ok       atomic.Int64
	mu       sync.Mutex
	failures []string
	stop     chan struct{}
	done     chan struct{}
}

func startCriticalStream(t *testing.T, url string, headers ...string) *criticalStream {
	cs := &criticalStream{stop: make(chan struct{}), done: make(chan struct{})}
	c := httpClient(t)
	go func() {
		defer close(cs.done)
		for {
			select {
			case <-cs.stop:
				return
			default:
			}
			resp, err := shedGet(c, url, headers...)
			switch {
			case err != nil:
				cs.fail(err.Error())
			case resp.StatusCode != http.StatusOK:
				cs.fail(fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), resp.Header.Get("X-Floodgate-Shed")))
			default:
				cs.ok.Add(1)
			}
		}
	}()
	t.Cleanup(cs.halt)
	return cs
}

func (cs *criticalStream) fail(s string) {
	cs.mu.Lock()
	cs.failures = append(cs.failures, s)
	cs.mu.Unlock()
}

func (cs *criticalStream) halt() {
	select {
	case <-cs.stop:
	default:
		close(cs.stop)
	}
	<-cs.done
}

// The chaos header variant is tested from 127.0.0.1 only: every client a
// test can be is loopback, so "untrusted" is shown by reloading with a
// trusted range that excludes loopback. The reloads double as the live
// tuning check: each takes effect within 1 s of the "config reloaded" log
// event while a parallel stream of critical requests never fails.
func TestShedChaosHeaderTrustedOnlyAndLiveTuning(t *testing.T) {
	o := startShedOrigin(t)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	chaos := func(enabled bool, trusted string) string {
		return fmt.Sprintf("{enabled: %v, min_score: 80, max_score: 100, header: X-Floodgate-Chaos, header_value: exp-7, trusted_cidrs: [%s]}", enabled, trusted)
	}
	config := func(enabled bool, trusted string) string {
		return shedGatewayConfig(o.addr, shedLoadshedSection(false, 1000, 2000, chaos(enabled, trusted)))
	}
	writeFile(t, path, config(false, "127.0.0.1/32"))
	p := startProcess(t, path)
	base := "http://" + p.addr
	c := httpClient(t)
	// The critical stream carries the chaos header too: it must never be
	// hit, whatever the chaos settings, because score 10 is out of range.
	stream := startCriticalStream(t, base+"/crit/play", "X-Floodgate-Chaos", "exp-7")

	if resp := mustShedGet(t, c, base+"/low/prefetch", "X-Floodgate-Chaos", "exp-7"); resp.StatusCode != 200 {
		t.Fatalf("chaos off: %d", resp.StatusCode)
	}

	// Enable chaos by rewriting the file.
	writeFile(t, path, config(true, "127.0.0.1/32"))
	p.waitFor(t, "config reloaded", 5*time.Second)
	reloaded := time.Now()
	var shed *http.Response
	eventually(t, time.Second, "chaos takes effect after reload", func() bool {
		shed = mustShedGet(t, c, base+"/low/prefetch", "X-Floodgate-Chaos", "exp-7")
		return shed.StatusCode == http.StatusServiceUnavailable
	})
	t.Logf("chaos enabled: effective %v after the config reloaded event", time.Since(reloaded).Round(time.Millisecond))
	if got := shed.Header.Get("X-Floodgate-Shed"); got != "chaos; score=90" {
		t.Errorf("X-Floodgate-Shed = %q", got)
	}
	if got := shed.Header.Get("X-Floodgate-Status"); got != "local_shed_chaos" {
		t.Errorf("X-Floodgate-Status = %q", got)
	}
	if ra, err := strconv.Atoi(shed.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 5 {
		t.Errorf("Retry-After = %q, want 1..5", shed.Header.Get("Retry-After"))
	}
	before := o.count("/low/prefetch")
	for range 5 {
		if resp := mustShedGet(t, c, base+"/low/prefetch", "X-Floodgate-Chaos", "exp-7"); resp.StatusCode != 503 {
			t.Fatalf("chaos header request: %d", resp.StatusCode)
		}
	}
	if n := o.count("/low/prefetch") - before; n != 0 {
		t.Errorf("origin saw %d chaos-shed requests", n)
	}
	for _, tc := range []struct{ what, path, value string }{
		{"no header", "/low/prefetch", ""},
		{"wrong header value", "/low/prefetch", "exp-8"},
		{"score below min_score", "/crit/login", "exp-7"},
	} {
		var h []string
		if tc.value != "" {
			h = []string{"X-Floodgate-Chaos", tc.value}
		}
		if resp := mustShedGet(t, c, base+tc.path, h...); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", tc.what, resp.StatusCode, resp.Header.Get("X-Floodgate-Shed"))
		}
	}
	if v := shedAdmin(t, c, p.adminAddr); v.Chaos["90-100"] != 6 || sum(v.Chaos) != 6 || sum(v.Global.Shed) != 0 {
		t.Errorf("/admin/shed chaos %v global shed %v, want 6 chaos sheds in 90-100", v.Chaos, v.Global.Shed)
	}

	// Loopback no longer trusted: the same request passes.
	writeFile(t, path, config(true, "10.0.0.0/8"))
	p.waitFor(t, "config reloaded", 5*time.Second)
	reloaded = time.Now()
	eventually(t, time.Second, "untrusted source is not shed after reload", func() bool {
		return mustShedGet(t, c, base+"/low/prefetch", "X-Floodgate-Chaos", "exp-7").StatusCode == http.StatusOK
	})
	t.Logf("loopback untrusted: effective %v after the config reloaded event", time.Since(reloaded).Round(time.Millisecond))

	stream.halt()
	stream.mu.Lock()
	defer stream.mu.Unlock()
	if len(stream.failures) > 0 {
		t.Errorf("%d critical requests failed across two reloads, e.g. %v", len(stream.failures), stream.failures[0])
	}
	if stream.ok.Load() < 20 {
		t.Errorf("critical stream sent only %d requests", stream.ok.Load())
	}
	t.Logf("critical stream: %d requests, %d failed", stream.ok.Load(), len(stream.failures))
}

// Dry run on a real process: requests held at the origin push the global
// in-flight signal past max (threshold 0, max 2), the cutoff drops to 0,
// and low-priority requests are admitted while /admin/shed and /metrics
// count them as would-be sheds.
func TestShedDryRunVisibleInAdmin(t *testing.T) {
	o := startShedOrigin(t)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, shedGatewayConfig(o.addr, shedLoadshedSection(true, 0, 2, "{enabled: false}")))
	p := startProcess(t, path)
	base := "http://" + p.addr
	c := httpClient(t)

	if resp, _ := adminGet(t, c, "http://"+p.adminAddr+"/admin/shed", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/admin/shed without token: %d", resp.StatusCode)
	}

	var held sync.WaitGroup
	for range 2 {
		held.Add(1)
		go func() {
			defer held.Done()
			if resp, err := shedGet(c, base+"/hold"); err != nil || resp.StatusCode != 200 {
				t.Errorf("/hold: %v %v", resp, err)
			}
		}()
	}
	for range 2 {
		<-o.entered
	}
	eventually(t, 2*time.Second, "global cutoff 0 in /admin/shed", func() bool {
		return shedAdmin(t, c, p.adminAddr).Global.Cutoff == 0
	})
	for range 3 {
		resp := mustShedGet(t, c, base+"/low/telemetry")
		if resp.StatusCode != 200 || resp.Header.Get("X-Floodgate-Shed") != "" {
			t.Fatalf("dry run must admit: %d %q", resp.StatusCode, resp.Header.Get("X-Floodgate-Shed"))
		}
	}
	if n := o.count("/low/telemetry"); n != 3 {
		t.Errorf("origin saw %d of 3 dry-run requests", n)
	}
	v := shedAdmin(t, c, p.adminAddr)
	if !v.Global.DryRun || v.Global.WouldShed["90-100"] != 3 || sum(v.Global.WouldShed) != 3 || sum(v.Global.Shed) != 0 {
		t.Errorf("/admin/shed global: dry_run %v would_shed %v shed %v; want dry run, 3 would-sheds in 90-100, none shed",
			v.Global.DryRun, v.Global.WouldShed, v.Global.Shed)
	}
	_, metrics := adminGet(t, c, "http://"+p.adminAddr+"/metrics", shedAdminToken)
	if want := `floodgate_shed_would_total{band="90-100",scope="global"} 3`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}

	o.unblock()
	held.Wait()
	eventually(t, 10*time.Second, "global cutoff back to 100", func() bool {
		v := shedAdmin(t, c, p.adminAddr)
		return v.Global.Cutoff == 100 && v.Global.Inflight == 0
	})
}

package test

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const dashboardToken = "dash-token"

// dashboardConfig routes everything to origin "app", whose shedding scope
// reacts at once to in-flight requests: threshold 1, max 9, no smoothing,
// a proportional controller, no adaptive-limit queue.
// /hold is critical (score 10), /low is telemetry (score 95). A rate-limit
// policy is installed so the dashboard has one to show.
func dashboardConfig(originAddr string) string {
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0", drain_timeout: 5s}
admin: {listen: "127.0.0.1:0", token: %q}
access_log: {enabled: false}
origins:
  app:
    instances: [{address: %q}]
rate_limit:
  policies:
    - {name: per-client, rate: 10000, burst: 10000, key: [client_ip], max_keys: 1000}
filters:
  - {name: rate_limit, options: {policy: per-client}}
routes:
  - name: app
    match: {path_prefix: /}
    origin: app
loadshed:
  interval: 20ms
  scoring:
    default_score: 50
    rules:
      - {name: critical, match: {path_prefixes: [/hold]}, set: 10}
      - {name: telemetry, match: {path_prefixes: [/low]}, set: 95}
  global:
    signals:
      cpu: {enabled: false}   # other jobs on a shared machine must not shed here
  origins:
    app:
      k: 1
      hysteresis: 0
      smoothing: {rise: 0s, fall: 0s}
      controller: {mode: proportional}   # the level follows the pressure at once
      queue: {enabled: false}
      signals:
        concurrency: {enabled: false}
        inflight: {enabled: true, threshold: 1, max: 9}
`, dashboardToken, originAddr)
}

// chromiumPath finds Debian's chromium (scripts/install-chromium.sh).
// Without it the test skips, except under CI, where it must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run installs it with scripts/install-chromium.sh")
	}
	t.Skip("chromium not installed (scripts/install-chromium.sh installs it)")
	return ""
}

// screenshotDir is where the screenshot is kept: the test's artifact
// directory under `go test -artifacts`, else test/output/ (ignored by
// git), so it outlives the run either way.
func screenshotDir(t *testing.T) string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir()
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "output")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts headless chromium with a fresh profile; everything
// stops when the test ends.
func newBrowser(t *testing.T, execPath string) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1500),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// pageState is what the test reads from the page.
type pageState struct {
	Curve     string  `json:"curve"`
	CurveK    string  `json:"curveK"`
	X         float64 `json:"x"`
	HasLevel  bool    `json:"hasLevel"`
	Overload  float64 `json:"overload"`
	Cutoff    float64 `json:"cutoff"`
	CX        float64 `json:"cx"`
	CY        float64 `json:"cy"`
	ShedRate  float64 `json:"shedRate"`
	Status    string  `json:"status"`
	Instances int     `json:"instances"`
	Policies  int     `json:"policies"`
}

const readPage = `(() => {
  const card = document.querySelector('[data-scope="app"]');
  if (!card) return null;
  const pt = card.querySelector('circle.now'), curve = card.querySelector('path.curve');
  const band = card.querySelector('tr[data-band="90-100"]');
  return {
    curve: curve ? curve.getAttribute('d') : '',
    curveK: curve ? curve.getAttribute('data-k') : '',
    x: Number(pt.getAttribute('data-x')),
    hasLevel: pt.hasAttribute('data-level'),
    overload: Number(pt.getAttribute('data-overload')),
    cutoff: Number(pt.getAttribute('data-cutoff')),
    cx: Number(pt.getAttribute('cx')),
    cy: Number(pt.getAttribute('cy')),
    shedRate: band ? Number(band.getAttribute('data-shed-rate')) : 0,
    status: document.getElementById('status').textContent,
    instances: document.querySelectorAll('#origins tr[data-instance]').length,
    policies: document.querySelectorAll('#ratelimits tr[data-policy]').length,
  };
})()`

// The dashboard in a real browser against the real gateway binary: the
// curve renders for the scope's k, the point moves when overload rises,
// a shed band shows a non-zero rate, and the page logs no errors.
func TestDashboardInBrowserFollowsOverload(t *testing.T) {
	execPath := chromiumPath(t)
	so := startShedOrigin(t)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, dashboardConfig(so.addr))
	p := startProcess(t, path)
	c := httpClient(t)
	// A shedding scope exists from an origin's first request.
	if resp, err := c.Get("http://" + p.addr + "/warm-up"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	ctx := newBrowser(t, execPath)
	var consoleMu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning {
				consoleMu.Lock()
				problems = append(problems, m.String())
				consoleMu.Unlock()
			}
		}
	}()

	// A browser sends the token as Basic credentials (the password); the
	// page's own fetches carry them too.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("sre:"+dashboardToken))
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": basic}}); err != nil {
		t.Fatal(err)
	}
	url := "http://" + p.adminAddr + "/dashboard?interval=250"
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	wait := func(what, predicate string) pageState {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			st, _ := chromedp.Run(ctx, chromedp.Evaluate[*pageState](readPage))
			t.Fatalf("waiting for %s: %v; page: %+v", what, err, st)
		}
		st, err := chromedp.Run(ctx, chromedp.Evaluate[*pageState](readPage))
		if err != nil || st == nil {
			t.Fatalf("reading the page: %v", err)
		}
		return *st
	}

	// 1. At rest: the curve for k = 1 from (0, 100) to (1, 0), the point at x = 0.
	calm := wait("the app scope's card", `(() => { const s = `+readPage+`; return s && s.curve.length > 0 && s.instances > 0; })()`)
	segments := strings.Count(calm.Curve, "L")
	if segments < 50 || !strings.HasPrefix(calm.Curve, "M36.0 10.0") || !strings.HasSuffix(calm.Curve, "388.0 190.0") || calm.CurveK != "1" {
		t.Fatalf("curve for k=1: %d segments, d=%.40s...%s, k=%s", segments, calm.Curve, calm.Curve[max(0, len(calm.Curve)-20):], calm.CurveK)
	}
	if calm.X != 0 || calm.Cutoff != 100 {
		t.Fatalf("at rest the point should sit at (0, 100): %+v", calm)
	}
	if calm.Policies != 1 {
		t.Fatalf("rate-limit policy missing from the page: %+v", calm)
	}

	// 2. Overload: 7 held critical requests put x at (7-1)/(9-1) = 0.75,
	// cutoff 100*(1-0.75^3) = 57.8, while telemetry keeps arriving and is shed.
	stop := make(chan struct{})
	var load sync.WaitGroup
	held := make(chan error, 7)
	for i := 0; i < 7; i++ {
		load.Add(1)
		go func() {
			defer load.Done()
			resp, err := c.Get("http://" + p.addr + "/hold")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("held request answered %d (%s)", resp.StatusCode, resp.Header.Get("X-Floodgate-Shed"))
				}
			}
			held <- err
		}()
		<-so.entered
	}
	var shedSeen, lowSent int
	var lowMu sync.Mutex
	load.Add(1)
	go func() {
		defer load.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 3000; n++ { // bounded: 30 s at most
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			resp, err := c.Get("http://" + p.addr + "/low")
			if err != nil {
				continue
			}
			resp.Body.Close()
			lowMu.Lock()
			lowSent++
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("X-Floodgate-Status") == "local_shed_origin" {
				shedSeen++
			}
			lowMu.Unlock()
		}
	}()

	hot := wait("the point to move and telemetry to be shed", `(() => { const s = `+readPage+`; return s && s.x > 0.5 && s.shedRate > 0; })()`)
	if hot.CX <= calm.CX || hot.CY <= calm.CY {
		t.Errorf("the point did not move right and down: calm (%v, %v), overloaded (%v, %v)", calm.CX, calm.CY, hot.CX, hot.CY)
	}
	// The proportional controller puts the level at the pressure:
	// (7-1)/(9-1) = 0.75, and the curve the cutoff at 100*(1-0.75^3) = 57.8.
	if hot.X < 0.7 || hot.X > 0.8 || hot.Cutoff < 50 || hot.Cutoff > 65 {
		t.Errorf("overloaded point at x=%v cutoff=%v, want about (0.75, 57.8)", hot.X, hot.Cutoff)
	}
	if hot.Cutoff >= calm.Cutoff {
		t.Errorf("cutoff did not fall: %v -> %v", calm.Cutoff, hot.Cutoff)
	}
	if !strings.HasPrefix(hot.Status, "updated") {
		t.Errorf("status line: %q", hot.Status)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(screenshotDir(t), "dashboard-overloaded.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes); page: x=%.2f cutoff=%.1f telemetry shed %.1f/s", file, len(shot), hot.X, hot.Cutoff, hot.ShedRate)

	close(stop)
	so.unblock()
	for i := 0; i < 7; i++ {
		if err := <-held; err != nil {
			t.Errorf("critical request: %v", err)
		}
	}
	load.Wait()
	lowMu.Lock()
	if shedSeen == 0 {
		t.Errorf("no telemetry request was shed out of %d", lowSent)
	}
	lowMu.Unlock()

	// 3. Recovery moves the point back to (0, 100).
	wait("the point to return", `(() => { const s = `+readPage+`; return s && s.x === 0 && s.cutoff === 100; })()`)

	chromedp.Cancel(ctx)
	<-consoleDone
	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the page logged %d console problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

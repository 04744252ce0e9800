package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// opsConfig is processConfig with extra server keys and an admin token.
func opsConfig(originAddr, serverExtra, adminToken, rest string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
%s
admin:
  listen: "127.0.0.1:0"
  token: %q
origins:
  backend:
    instances: [{address: %q}]
routes:
  - name: version
    match: {path: /version}
    static: {status: 200, body: v1}
  - name: backend
    match: {path_prefix: /o}
    rewrite: {strip_prefix: /o}
    origin: backend
%s`, serverExtra, adminToken, originAddr, rest)
}

func statusOf(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// SIGTERM: /readyz is 503 at once, the listener keeps serving through the
// lame duck, then the process drains and exits 0.
func TestShutdownLameDuckKeepsServingWhileNotReady(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, opsConfig(o.addr, "  lame_duck: 2s\n  drain_timeout: 5s", "", ""))
	p := startProcess(t, path)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if got := statusOf(t, c, "http://"+p.adminAddr+"/readyz", ""); got != 200 {
		t.Fatalf("readyz before shutdown: %d", got)
	}

	p.signal(t, syscall.SIGTERM)
	p.waitFor(t, "shutting down: lame duck", 5*time.Second)
	start := time.Now()
	if got := statusOf(t, c, "http://"+p.adminAddr+"/readyz", ""); got != 503 {
		t.Fatalf("readyz once shutdown started: %d, want 503", got)
	}
	// Still accepting new connections, and asking clients not to keep them.
	resp, err := c.Get("http://" + p.addr + "/o/during-lame-duck")
	if err != nil {
		t.Fatalf("request during the lame duck: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("during the lame duck: %d, Connection: close=%v", resp.StatusCode, resp.Close)
	}
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Logf("warning: checks took %v of the 2s lame duck", elapsed)
	}
	p.waitFor(t, "shutting down: draining", 5*time.Second)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("lame duck ended after %v, want about 2s", d)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit: %v (want 0)", err)
	}
	if _, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		t.Fatal("listener still accepting after exit")
	}
}

// A streaming response that is running when SIGTERM arrives is delivered
// whole before the process exits 0.
func TestShutdownDrainsStreamingResponse(t *testing.T) {
	next := make(chan struct{})
	started := make(chan struct{}, 1)
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for i := 1; i <= 5; i++ {
				fmt.Fprintf(w, "data: event %d\n\n", i)
				if w.Flush() != nil {
					return
				}
				if i == 1 {
					started <- struct{}{}
				}
				if i == 5 {
					return
				}
				select {
				case <-next:
				case <-time.After(10 * time.Second):
					return
				}
			}
		})
	})
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, opsConfig(o.addr, "  drain_timeout: 20s", "", ""))
	p := startProcess(t, path)
	c := httpClient(t)
	resp, err := c.Get("http://" + p.addr + "/o/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	p.signal(t, syscall.SIGTERM)
	p.waitFor(t, "shutting down: draining", 5*time.Second)
	// The stream continues after shutdown began; each event is released
	// only once the previous one is through.
	br := bufio.NewReader(resp.Body)
	for i := 1; i <= 5; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: event %d\n", i) {
			t.Fatalf("event %d during drain: %q %v", i, line, err)
		}
		_, _ = br.ReadString('\n')
		if i < 5 {
			next <- struct{}{}
		}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("stream end: %q %v", rest, err)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit: %v (want 0)", err)
	}
	if strings.Contains(p.logs.String(), "drain timeout reached") {
		t.Fatal("the drain should have finished before its timeout")
	}
}

// A request still running at drain_timeout is cut: its connection is
// closed, the timeout is logged, and the process exits 0 on time.
func TestShutdownReachesDrainTimeout(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		<-release
	})
	defer close(release)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, opsConfig(o.addr, "  drain_timeout: 1s", "", "    timeouts: {response: 30s}\n"))
	p := startProcess(t, path)
	c := httpClient(t)
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get("http://" + p.addr + "/o/stuck")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = fmt.Errorf("answered %d", resp.StatusCode)
			}
		}
		done <- err
	}()
	<-entered
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	ev := p.waitFor(t, "drain timeout reached", 10*time.Second)
	if ev["in_flight"] != 1.0 || ev["connections"] != 1.0 {
		t.Errorf("drain timeout log: %v", ev)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit: %v (want 0)", err)
	}
	if d := time.Since(start); d < time.Second || d > 8*time.Second {
		t.Fatalf("exited %v after SIGTERM with drain_timeout 1s", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the stuck request was answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck request's connection was not closed")
	}
}

// SIGHUP never kills the gateway, even on the embedded config (which has
// no file to reload).
func TestSighupWithEmbeddedConfigKeepsServing(t *testing.T) {
	cmd := exec.Command(gatewayBin, "-log-format", "json")
	cmd.Env = append(os.Environ(), "FLOODGATE_SERVER_LISTEN=127.0.0.1:0", "FLOODGATE_ADMIN_LISTEN=127.0.0.1:0",
		"FLOODGATE_TIMESERIES_DATA_DIR="+filepath.Join(t.TempDir(), "ts"))
	p := startCmd(t, cmd)
	for i := 0; i < 2; i++ {
		p.signal(t, syscall.SIGHUP)
		p.waitFor(t, "SIGHUP: the embedded config cannot change", 5*time.Second)
	}
	c := httpClient(t)
	if got := statusOf(t, c, "http://"+p.addr+"/healthz", ""); got != 200 {
		t.Fatalf("after SIGHUP: %d", got)
	}
	select {
	case err := <-p.exited:
		t.Fatalf("gateway exited on SIGHUP: %v", err)
	default:
	}
}

// SIGUSR1 reopens the access-log file: after a rotator renamed it, new
// lines go to a fresh file at the configured path.
func TestSigusr1ReopensAccessLogForRotation(t *testing.T) {
	o := startOrigin(t, echoHandler)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	path := filepath.Join(dir, "floodgate.yaml")
	writeFile(t, path, opsConfig(o.addr, "", "", fmt.Sprintf("access_log:\n  options: {output: %q}\n", logPath)))
	p := startProcess(t, path)
	c := httpClient(t)
	statusOf(t, c, "http://"+p.addr+"/o/before", "")
	waitForFileLine(t, logPath, `"path":"/o/before"`)

	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGUSR1)
	p.waitFor(t, "access log files reopened", 5*time.Second)
	statusOf(t, c, "http://"+p.addr+"/o/after", "")
	waitForFileLine(t, logPath, `"path":"/o/after"`)
	rotated, _ := os.ReadFile(logPath + ".1")
	fresh, _ := os.ReadFile(logPath)
	if strings.Count(string(rotated), "\n") != 1 || !strings.Contains(string(rotated), "/o/before") ||
		strings.Count(string(fresh), "\n") != 1 || !strings.Contains(string(fresh), "/o/after") {
		t.Fatalf("rotated file:\n%s\nfresh file:\n%s", rotated, fresh)
	}
}

// waitForFileLine waits until the file holds a line containing want (the
// access log flushes every 200ms).
func waitForFileLine(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%s has no line with %q:\n%s", path, want, b)
}

// A reloaded admin.token applies at once: the old one stops working.
func TestAdminTokenReloads(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, opsConfig(o.addr, "", "first-token", ""))
	p := startProcess(t, path)
	c := httpClient(t)
	url := "http://" + p.adminAddr + "/admin/routes"
	if got := statusOf(t, c, url, "first-token"); got != 200 {
		t.Fatalf("first token: %d", got)
	}
	writeFile(t, path, opsConfig(o.addr, "", "second-token", ""))
	p.waitFor(t, "config reloaded", 10*time.Second)
	if got := statusOf(t, c, url, "first-token"); got != 401 {
		t.Fatalf("old token after reload: %d, want 401", got)
	}
	if got := statusOf(t, c, url, "second-token"); got != 200 {
		t.Fatalf("new token after reload: %d, want 200", got)
	}
	if strings.Contains(p.logs.String(), `"key":"admin.token"`) {
		t.Fatal("admin.token must not be reported as restart-only")
	}
}

package test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func processConfig(originAddr, body string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  drain_timeout: 10s
admin:
  listen: "127.0.0.1:0"
origins:
  backend:
    instances: [{address: %q}]
routes:
  - name: version
    match: {path: /version}
    static: {status: 200, body: %q}
  - name: backend
    match: {path_prefix: /o}
    rewrite: {strip_prefix: /o}
    origin: backend
`, originAddr, body)
}

func TestReloadUnderLiveTrafficLosesNoRequest(t *testing.T) {
	o := startOrigin(t, echoHandler)
	dir := t.TempDir()
	path := filepath.Join(dir, "floodgate.yaml")
	writeFile(t, path, processConfig(o.addr, "v1"))
	p := startProcess(t, path)
	c := httpClient(t)

	var failures, total atomic.Int64
	var sawV2 atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				url := "http://" + p.addr + "/version"
				if i%2 == 1 {
					url = "http://" + p.addr + "/o/x"
				}
				resp, err := c.Get(url)
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
				if string(body) == "v2" {
					sawV2.Store(true)
				}
			}
		}()
	}

	writeFile(t, path, processConfig(o.addr, "v2"))
	p.waitFor(t, "config reloaded", 10*time.Second)
	writeFile(t, path, "server: {listen: [not, a, string]\n") // broken YAML
	p.waitFor(t, "config reload failed", 10*time.Second)
	writeFile(t, path, strings.Replace(processConfig(o.addr, "v3"), "origin: backend", "origin: missing", 1))
	ev := p.waitFor(t, "config reload failed", 10*time.Second)
	if !strings.Contains(fmt.Sprint(ev["error"]), "routes[1].origin") {
		t.Errorf("reload error should name the key path: %v", ev["error"])
	}
	close(stop)
	wg.Wait()

	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads", failures.Load(), total.Load())
	}
	if !sawV2.Load() {
		t.Fatal("the valid reload never took effect")
	}
	resp, err := c.Get("http://" + p.addr + "/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "v2" {
		t.Fatalf("after invalid reloads the running config must stay v2, got %q", body)
	}
	t.Logf("%d requests across 3 reloads, 0 failed", total.Load())
}

func TestSigtermDrainsInFlightRequests(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		<-release
		ctx.SetBodyString("finished")
	})
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, processConfig(o.addr, "v1"))
	p := startProcess(t, path)
	c := httpClient(t)

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Get("http://" + p.addr + "/o/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{status: resp.StatusCode, body: string(body)}
	}()
	<-entered
	p.signal(t, syscall.SIGTERM)
	p.waitFor(t, "shutting down", 5*time.Second)
	close(release)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("gateway exit: %v (want status 0)", err)
	}
}

func TestValidateCommand(t *testing.T) {
	// The shipped configs validate (the Docker image runs the example).
	for _, shipped := range []string{"../config/example.yaml", "../config/default.yaml"} {
		if out, err := exec.Command(gatewayBin, "validate", "-config", shipped).CombinedOutput(); err != nil {
			t.Errorf("%s: %v %s", shipped, err, out)
		}
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, processConfig("127.0.0.1:1", "v"))
	out, err := exec.Command(gatewayBin, "validate", "-config", good).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Fatalf("good config: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, `
server: {listen: "nope", max_body_size: "lots"}
routes:
  - name: r
    match: {path_regex: "("}
    origin: ghost
    filters: [{name: no_such_filter}]
`)
	out, err = exec.Command(gatewayBin, "validate", "-config", bad).CombinedOutput()
	if err == nil {
		t.Fatalf("bad config validated: %s", out)
	}
	if !strings.Contains(string(out), "server.max_body_size") {
		t.Fatalf("error should name the key path: %s", out)
	}
	bad2 := filepath.Join(dir, "bad2.yaml")
	writeFile(t, bad2, `
server: {listen: "nope"}
routes:
  - name: r
    match: {path_regex: "("}
    origin: ghost
    filters: [{name: no_such_filter}]
`)
	out, _ = exec.Command(gatewayBin, "validate", "-config", bad2).CombinedOutput()
	for _, want := range []string{"server.listen", "routes[0].origin", "routes[0].match.path_regex"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	ok := filepath.Join(dir, "filter.yaml")
	writeFile(t, ok, strings.Replace(processConfig("127.0.0.1:1", "v"), "origin: backend", "origin: backend\n    filters: [{name: no_such_filter}]", 1))
	out, err = exec.Command(gatewayBin, "validate", "-config", ok).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "routes[1].filters[0].name: unknown filter \"no_such_filter\"") {
		t.Fatalf("unknown filter: %v %s", err, out)
	}
}

func TestDefaultConfigServesOutOfTheBox(t *testing.T) {
	cmd := exec.Command(gatewayBin, "-log-format", "json")
	cmd.Env = append(os.Environ(), "FLOODGATE_SERVER_LISTEN=127.0.0.1:0", "FLOODGATE_ADMIN_LISTEN=127.0.0.1:0",
		"FLOODGATE_TIMESERIES_DATA_DIR="+filepath.Join(t.TempDir(), "ts"))
	p := startCmd(t, cmd)
	c := httpClient(t)
	resp, _ := get(t, c, "http://"+p.addr+"/healthz")
	if resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	resp, body := get(t, c, "http://"+p.addr+"/demo/hello?x=1")
	if resp.StatusCode != 200 || !strings.Contains(body, `"path":"/hello"`) {
		t.Fatalf("demo route: %d %s (is port 8081 free?)", resp.StatusCode, body)
	}
	// The demo TimeSeries namespace accepts and returns events.
	now := time.Now().UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
	write := `{"namespace":"demo","events":[{"timeSeriesId":"device-1","eventTime":"` + now +
		`","eventId":"e-1","eventItems":[{"eventItemKey":"ZGV2aWNlVHlwZQ==","eventItemValue":"aW9z"}]}]}`
	wresp, err := c.Post("http://"+p.addr+"/ts/WriteEventRecordsSync", "application/json", strings.NewReader(write))
	if err != nil {
		t.Fatal(err)
	}
	wbody, _ := io.ReadAll(wresp.Body)
	wresp.Body.Close()
	if wresp.StatusCode != 200 || !strings.Contains(string(wbody), `"written":1`) {
		t.Fatalf("timeseries write: %d %s", wresp.StatusCode, wbody)
	}
	read := `{"namespace":"demo","timeSeriesId":"device-1","timeInterval":{"start":"2000-01-01T00:00:00.000Z","end":"2100-01-01T00:00:00.000Z"}}`
	rresp, err := c.Post("http://"+p.addr+"/ts/ReadEventRecords", "application/json", strings.NewReader(read))
	if err != nil {
		t.Fatal(err)
	}
	rbody, _ := io.ReadAll(rresp.Body)
	rresp.Body.Close()
	if rresp.StatusCode != 200 || !strings.Contains(string(rbody), `"eventId":"e-1"`) {
		t.Fatalf("timeseries read: %d %s", rresp.StatusCode, rbody)
	}
	resp, _ = get(t, c, "http://"+p.addr+"/unknown")
	if resp.StatusCode != 404 || resp.Header.Get("X-Floodgate-Status") != "no_route" {
		t.Fatalf("unknown: %d %q", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"))
	}
}

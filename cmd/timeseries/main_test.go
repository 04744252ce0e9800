package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/floodgate-dev/floodgate/timeseries"
)

// fasthttp starts one process-wide goroutine that refreshes the Date header forever once any
// server runs; it is not ours to stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.Cleanup(func(code int) {
			if buildOnce.path != "" {
				_ = os.RemoveAll(filepath.Dir(buildOnce.path))
			}
			os.Exit(code)
		}))
}

// buildBinary compiles this command once per test run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "timeseries-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "timeseries")
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildOnce.err = err
			return
		}
		out, err := exec.Command(goBin, "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

type proc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *strings.Builder
	mu     *sync.Mutex
	waited chan error
}

// start runs the server and waits for its "listening on" line.
func start(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &strings.Builder{}, mu: &sync.Mutex{}, waited: make(chan error, 1)}
	cmd.Stderr = lockedWriter{p.mu, p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		p.waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.waited
	})
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, "listening on ") {
			t.Fatalf("server did not start: %q\n%s", line, p.logs())
		}
		p.addr = strings.TrimPrefix(line, "listening on ")
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not announce its address:\n%s", p.logs())
	}
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func post(c *http.Client, addr, op string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	resp, err := c.Post("http://"+addr+"/ts/"+op, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func newClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func event(tsid, id string, at time.Time) timeseries.EventRecord {
	return timeseries.EventRecord{TimeSeriesID: tsid, EventID: id, EventTime: at.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		EventItems: []timeseries.EventItem{{EventItemKey: b64("deviceType"), EventItemValue: b64("ios")}}}
}

// readIDs opens the store directly and returns every event id of tsid.
func readIDs(t *testing.T, svc *timeseries.Service, tsid string, from, to time.Time) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	req := timeseries.ReadRequest{Namespace: "demo", TimeSeriesID: tsid, PageSize: 1000,
		TimeInterval: timeseries.TimeInterval{Start: from.UTC().Format(time.RFC3339Nano), End: to.UTC().Format(time.RFC3339Nano)}}
	for {
		body, _ := json.Marshal(req)
		st, resp := svc.Handle(context.Background(), timeseries.OpRead, body)
		if st != 200 {
			t.Fatalf("read: %d %s", st, resp)
		}
		var er timeseries.EventsResponse
		if err := json.Unmarshal(resp, &er); err != nil {
			t.Fatal(err)
		}
		for _, e := range er.Events {
			out[e.EventID] = true
		}
		if er.NextPageToken == "" {
			return out
		}
		req.PageToken = er.NextPageToken
	}
}

// TestKill9KeepsEveryAcknowledgedSyncWrite writes with concurrent clients, SIGKILLs the server
// by PID while writes are in flight, reopens the store and checks every acknowledged event.
func TestKill9KeepsEveryAcknowledgedSyncWrite(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, "-listen", "127.0.0.1:0", "-data", "store")
	client := newClient()
	defer client.CloseIdleConnections()
	base := time.Now().Add(-time.Minute)

	var mu sync.Mutex
	acked := map[string][]string{}
	total := 0
	enough := make(chan struct{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			tsid := fmt.Sprintf("dev-%d", w)
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				var evs []timeseries.EventRecord
				for i := 0; i < 10; i++ {
					evs = append(evs, event(tsid, fmt.Sprintf("w%d-b%d-%d", w, b, i), base.Add(time.Duration(b*10+i)*time.Millisecond)))
				}
				st, _, err := post(client, p.addr, timeseries.OpWriteSync, timeseries.WriteRequest{Namespace: "demo", Events: evs})
				if err != nil || st != 200 {
					return // the server is gone
				}
				mu.Lock()
				for _, e := range evs {
					acked[tsid] = append(acked[tsid], e.EventID)
				}
				total += len(evs)
				if total >= 600 {
					select {
					case <-enough:
					default:
						close(enough)
					}
				}
				mu.Unlock()
			}
		}(w)
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatalf("too few acknowledged writes:\n%s", p.logs())
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil { // writes are still in flight
		t.Fatal(err)
	}
	<-p.waited
	p.waited <- nil // let the cleanup's wait return
	close(stop)
	wg.Wait()

	svc, err := timeseries.Open(filepath.Join(dir, "store"), timeseries.DemoConfig(), timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	checked := 0
	for tsid, list := range acked {
		got := readIDs(t, svc, tsid, base.Add(-time.Second), time.Now().Add(time.Minute))
		for _, id := range list {
			if !got[id] {
				t.Fatalf("acknowledged event %s of %s lost after SIGKILL", id, tsid)
			}
			checked++
		}
	}
	t.Logf("%d acknowledged events all present after SIGKILL", checked)
}

// TestSIGTERMFlushesAsyncQueue: events accepted with 202 are durable after a graceful stop.
func TestSIGTERMFlushesAsyncQueue(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ns.yaml")
	// A long coalesce window guarantees the events are still queued when SIGTERM arrives.
	yaml := `
read_fanout: 8
namespaces:
  demo:
    time_partition: {seconds_per_time_slice: 86400, seconds_per_time_bucket: 3600, event_buckets: 2}
    queue_buffering: {coalesce: 1m, buffer_capacity: 10000}
    accept_limit: 24h
    retention: {close_after: 24h, delete_after: 72h}
    index:
      field_mapping: {deviceType: KEYWORD}
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, dir, "-listen", "127.0.0.1:0", "-data", "store", "-namespaces", cfgPath)
	client := newClient()
	defer client.CloseIdleConnections()
	base := time.Now().Add(-time.Minute)
	var evs []timeseries.EventRecord
	for i := 0; i < 200; i++ {
		evs = append(evs, event("dev", fmt.Sprintf("a%03d", i), base.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := 0; i < len(evs); i += 50 {
		st, body, err := post(client, p.addr, timeseries.OpWrite, timeseries.WriteRequest{Namespace: "demo", Events: evs[i : i+50]})
		if err != nil || st != 202 {
			t.Fatalf("async write: %d %s %v", st, body, err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.waited; err != nil {
		t.Fatalf("graceful exit failed: %v\n%s", err, p.logs())
	}
	p.waited <- nil
	if !strings.Contains(p.logs(), "store closed cleanly") {
		t.Fatalf("no clean close in logs:\n%s", p.logs())
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := timeseries.Open(filepath.Join(dir, "store"), cfg, timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	if got := readIDs(t, svc, "dev", base.Add(-time.Second), time.Now().Add(time.Minute)); len(got) != len(evs) {
		t.Fatalf("after SIGTERM: %d of %d accepted events present", len(got), len(evs))
	}
}

func TestStartsWithNoArguments(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary(t))
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	line := ""
	if sc.Scan() {
		line = sc.Text()
	}
	if line == "" {
		_ = cmd.Wait()
		if strings.Contains(stderr.String(), "address already in use") {
			t.Skip("default port :8090 is taken on this machine")
		}
		t.Fatalf("no-argument start failed: %s", stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if !strings.HasSuffix(line, ":8090") {
		t.Fatalf("default listen address: %q", line)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "timeseries", "CURRENT")); err != nil {
		t.Fatalf("default data dir not created: %v", err)
	}
}

func TestLoadConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ yaml, want string }{
		"bad duration":  {"namespaces:\n  demo:\n    accept_limit: soon\n", "accept_limit"},
		"unknown key":   {"namespaces:\n  demo:\n    acceptlimit: 1h\n", "acceptlimit"},
		"invalid value": {"namespaces:\n  demo:\n    time_partition: {seconds_per_time_slice: 100, seconds_per_time_bucket: 60, event_buckets: 1}\n    accept_limit: 1h\n    retention: {close_after: 1h, delete_after: 2h}\n", "namespaces.demo.time_partition.seconds_per_time_slice"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v does not name %q", name, err, c.want)
		}
	}
}

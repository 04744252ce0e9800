package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/syncbuf"
)

// storeNode is a cmd/timeseries process this test started.
type storeNode struct {
	cmd    *exec.Cmd
	addr   string
	exited chan error
}

func startStoreNode(t *testing.T) *storeNode {
	t.Helper()
	return launchStore(t, "-listen", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "data"))
}

// launchStore runs cmd/timeseries with args, waits for the address it
// announces on stdout, and stops it (resuming it first, in case a test froze
// it with SIGSTOP) when the test ends.
func launchStore(t *testing.T, args ...string) *storeNode {
	t.Helper()
	cmd := exec.Command(timeseriesBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &storeNode{cmd: cmd, exited: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
		n.exited <- cmd.Wait()
	}()
	select {
	case l, ok := <-line:
		if !ok {
			t.Fatalf("timeseries exited before listening:\n%s", logs.String())
		}
		n.addr = strings.TrimPrefix(l, "listening on ")
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("timeseries did not announce its address:\n%s", logs.String())
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-n.exited
		}
	})
	return n
}

func post(t *testing.T, c *http.Client, url, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestGatewayHedgesReadsAcrossStoreNodes puts two standalone TimeSeries
// nodes behind a gateway route that hedges, freezes one node with SIGSTOP,
// and checks reads keep succeeding promptly from the other.
func TestGatewayHedgesReadsAcrossStoreNodes(t *testing.T) {
	a, b := startStoreNode(t), startStoreNode(t)
	c := httpClient(t)

	// Writes are idempotent, so writing the same events to both nodes is
	// what a hedged or retried write through the gateway may do anyway.
	now := time.Now().UTC().Truncate(time.Millisecond)
	var events []string
	for i := 0; i < 20; i++ {
		ts := now.Add(-time.Duration(i) * time.Minute).Format("2006-01-02T15:04:05.000Z07:00")
		events = append(events, fmt.Sprintf(`{"timeSeriesId":"dev-7","eventTime":%q,"eventId":"ev-%02d","eventItems":[{"eventItemKey":"ZGV2aWNlVHlwZQ==","eventItemValue":"aW9z"}]}`, ts, i))
	}
	write := `{"namespace":"demo","events":[` + strings.Join(events, ",") + `]}`
	for _, n := range []*storeNode{a, b} {
		if status, body := post(t, c, "http://"+n.addr+"/ts/WriteEventRecordsSync", write); status != 200 {
			t.Fatalf("write to %s: %d %s", n.addr, status, body)
		}
	}

	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  store:
    instances: [{address: %q}, {address: %q}]
    timeouts: {connect: 500ms, response: 3s}
    hedge: {delay: 25ms}
    # Round robin makes the frozen node come up every other request, so the
    # test does not depend on the load balancer's luck.
    lb: round_robin
routes:
  - name: events
    match: {path_prefix: /events}
    rewrite: {strip_prefix: /events, add_prefix: /ts}
    origin: store
    idempotent: true
`, a.addr, b.addr))
	// Resume the frozen node before the gateway shuts down, so abandoned
	// attempts to it finish.
	t.Cleanup(func() { _ = b.cmd.Process.Signal(syscall.SIGCONT) })

	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	read := `{"namespace":"demo","timeSeriesId":"dev-7","timeInterval":{"start":"2000-01-01T00:00:00.000Z","end":"2100-01-01T00:00:00.000Z"},"pageSize":100}`
	var slowest time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		status, body := post(t, c, "http://"+gw.addr+"/events/ReadEventRecords", read)
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		if status != 200 || strings.Count(body, `"eventId"`) != 20 {
			t.Fatalf("read %d through the gateway: %d %.200s", i, status, body)
		}
	}
	o, _ := gw.reg.Get("store")
	hedges := o.Budget().Allowed()
	t.Logf("20 reads with one of two store nodes frozen: slowest %s, hedges %d", slowest, hedges)
	if slowest > 2*time.Second {
		t.Fatalf("a read waited %s for the frozen node: hedging did not route around it", slowest)
	}
	if hedges == 0 {
		t.Fatal("no hedge was sent although one node was frozen")
	}
}

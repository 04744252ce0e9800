package test

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/syncbuf"
)

// proc is the gateway binary running as a real process.
type proc struct {
	cmd       *exec.Cmd
	addr      string
	adminAddr string
	logs      *syncbuf.Buffer
	// stdout holds the access log.
	stdout *syncbuf.Buffer
	events chan map[string]any
	exited chan error
}

// startProcess runs the gateway with a config file and waits for it to
// report its listening address.
func startProcess(t *testing.T, configPath string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(gatewayBin, "-config", configPath, "-log-format", "json")
	cmd.Env = append(os.Environ(), env...)
	return startCmd(t, cmd)
}

// startCmd starts a prepared gateway command and waits for it to listen.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &syncbuf.Buffer{}, stdout: &syncbuf.Buffer{}, events: make(chan map[string]any, 256), exited: make(chan error, 1)}
	cmd.Stdout = p.stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stderr, p.logs))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				select {
				case p.events <- ev:
				default: // nobody is waiting for this one
				}
			}
		}
		close(p.events)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(t) })
	ev := p.waitFor(t, "floodgate listening", 20*time.Second)
	for _, line := range strings.Split(p.logs.String(), "\n") {
		var adm map[string]any
		if json.Unmarshal([]byte(line), &adm) == nil && adm["msg"] == "admin listening" {
			p.adminAddr, _ = adm["addr"].(string)
		}
	}
	p.addr = strings.Replace(ev["addr"].(string), "[::]", "127.0.0.1", 1)
	return p
}

// waitFor returns the next log event whose msg starts with msg.
func (p *proc) waitFor(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				t.Fatalf("gateway exited before logging %q; logs:\n%s", msg, p.logs.String())
			}
			if m, _ := ev["msg"].(string); strings.HasPrefix(m, msg) {
				return ev
			}
		case <-deadline:
			t.Fatalf("gateway did not log %q within %s; logs:\n%s", msg, timeout, p.logs.String())
		}
	}
}

// signal sends sig to the gateway (a process this test started).
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait returns the process's exit error once it ends.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("gateway did not exit within %s", timeout)
	}
	return nil
}

func (p *proc) stop(t *testing.T) {
	select {
	case err := <-p.exited:
		p.exited <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

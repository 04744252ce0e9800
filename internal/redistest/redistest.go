// Package redistest starts real Redis servers for tests: a single node or a
// Redis Cluster of masters, each a redis-server process of the test's own on
// a free loopback port, awaited by PING (never by sleeping) and stopped by
// PID when the test ends. scripts/redis.sh installs redis-server and
// redis-cli; .ci/run calls it.
//
// Without redis-server a test is skipped with a message, except under CI
// (CI set in the environment), where it fails: CI must never pass by
// skipping the Redis tests.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/syncbuf"
	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 15 * time.Second

// Server is one redis-server process started by a test.
type Server struct {
	// Addr is 127.0.0.1:Port.
	Addr string
	Port int

	t       testing.TB
	args    []string
	dir     string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	out     *syncbuf.Buffer
	stopped bool
}

// binary finds redis-server (or redis-cli), failing under CI and skipping
// otherwise when it is missing.
func binary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found but CI is set: .ci/run installs it with scripts/redis.sh (%v)", name, err)
	}
	t.Skipf("%s not installed; run scripts/redis.sh to install it (this test fails instead of skipping when CI is set)", name)
	return ""
}

// Start runs a single Redis node and waits until it answers PING.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nil)
}

func start(t testing.TB, extra func(port int) []string) *Server {
	t.Helper()
	bin := binary(t, "redis-server")
	dir := t.TempDir()
	var lastErr error
	// A free port can be taken by someone else between choosing and
	// binding it; try a few.
	for range 5 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
			"--loglevel", "warning", "--logfile", "",
		}
		if extra != nil {
			args = append(args, extra(port)...)
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, t: t, args: append([]string{bin}, args...), dir: dir}
		if lastErr = s.run(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// run starts the process and waits for PING.
func (s *Server) run() error {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Die with the test process, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.out, s.stopped = cmd, exited, out, false
	s.mu.Unlock()
	if err := awaitPing(s.Addr, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%w; redis-server output:\n%s", err, out.String())
	}
	return nil
}

// awaitPing waits until addr answers PING, the process exits, or the
// start timeout passes.
func awaitPing(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := ping(addr); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("redis at %s did not answer PING within %s: %w", addr, startTimeout, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server at %s exited before answering PING", addr)
		case <-tick.C:
		}
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(buf[:n], []byte("+PONG")) {
		return fmt.Errorf("PING answered %q", buf[:n])
	}
	return nil
}

// PID is the running process's id.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.signalAndWait(syscall.SIGKILL)
}

// Stop ends the server with SIGTERM (SIGKILL after 5 s) and waits for it.
// It runs at cleanup; calling it earlier is fine.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited, done := s.cmd, s.exited, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if done || cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // in case a test paused it
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (s *Server) signalAndWait(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.stopped = true
	s.mu.Unlock()
	_ = cmd.Process.Signal(sig)
	<-exited
}

// Pause stops the process (SIGSTOP): connections stay open and requests go
// unanswered, as with a hung Redis. Resume continues it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.cmd.Process.Signal(sig)
}

// Restart starts a killed or stopped server again on the same port (with
// no data: persistence is off) and waits for PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := !s.stopped
	s.mu.Unlock()
	if running {
		s.t.Fatal("redistest: Restart of a running server")
	}
	var err error
	for range 20 { // the port may linger for a moment after a kill
		if err = s.run(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redis-server did not restart on %s: %v", s.Addr, err)
}

// Client returns a go-redis client for the server, closed at cleanup.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Cluster is a Redis Cluster of masters started by a test.
type Cluster struct {
	Nodes []*Server
}

// Addrs lists the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// StartCluster runs masters Redis nodes in cluster mode, joins them with
// redis-cli --cluster create (no replicas), and waits until every node
// reports cluster_state:ok and agrees that all 16384 slots are served.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	cli := binary(t, "redis-cli")
	c := &Cluster{}
	for range masters {
		c.Nodes = append(c.Nodes, start(t, func(port int) []string {
			bus, err := FreePort()
			if err != nil {
				t.Fatal(err)
			}
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-" + strconv.Itoa(port) + ".conf",
				"--cluster-node-timeout", "2000",
				"--cluster-port", strconv.Itoa(bus),
			}
		}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, n := range c.Nodes {
		if err := awaitClusterOK(ctx, n.Addr); err != nil {
			t.Fatalf("cluster node %s: %v\nredis-cli output:\n%s", n.Addr, err, out)
		}
	}
	return c
}

func awaitClusterOK(ctx context.Context, addr string) error {
	cl := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1})
	defer cl.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		info, err := cl.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = info
		}
		select {
		case <-ctx.Done():
			return errors.New("cluster not ok: " + last)
		case <-tick.C:
		}
	}
}

// ClusterClient returns a go-redis cluster client, closed at cleanup.
func (c *Cluster) ClusterClient(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DisableIdentity: true})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// Package cassandratest starts real Apache Cassandra nodes for tests through the repository's
// scripts/cassandra/run.sh (which fetches Cassandra from Maven Central into a cache folder and
// runs it on the local JDK), and decides what a test does when Cassandra is not available:
// under CI (CI=true) that is a failure, elsewhere a skip with the reason.
package cassandratest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// EnvHosts names a running Cassandra to use instead of starting one ("host:port").
const EnvHosts = "FLOODGATE_CASSANDRA"

// InCI reports whether tests run under CI, where a missing Cassandra is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Node is one Cassandra process started by run.sh.
type Node struct {
	Dir         string
	Addr        string
	NativePort  int
	StoragePort int
	PID         int
	script      string
	stopOnce    sync.Once
	stopErr     error
}

// HostPort is the node's CQL contact point.
func (n *Node) HostPort() string {
	return net.JoinHostPort(n.Addr, strconv.Itoa(n.NativePort))
}

// Script locates scripts/cassandra/run.sh by walking up from the working directory to the
// module root.
func Script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "scripts", "cassandra", "run.sh")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("cassandratest: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cassandratest: module root (go.mod) not found")
		}
		dir = parent
	}
}

// NodeSpec describes a node to start. Zero ports pick free ones.
type NodeSpec struct {
	Dir         string
	Addr        string // default 127.0.0.1
	NativePort  int
	StoragePort int
	Seeds       string // default Addr:StoragePort
	Heap        string // default 512M
	// StartTimeout bounds the wait for the CQL port (run.sh's default: 180s).
	StartTimeout time.Duration
	// RingDelay is how long a joining node waits to hear the ring through gossip (run.sh's
	// default: 1s, enough for one node).
	RingDelay time.Duration
}

// Start starts a node and returns once its CQL port accepts connections.
func Start(spec NodeSpec) (*Node, error) {
	script, err := Script()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("cassandratest: java not found in PATH (Cassandra needs a JDK 17)")
	}
	if spec.Addr == "" {
		spec.Addr = "127.0.0.1"
	}
	if spec.Heap == "" {
		spec.Heap = "512M"
	}
	for _, p := range []*int{&spec.NativePort, &spec.StoragePort} {
		if *p == 0 {
			if *p, err = freePort(spec.Addr); err != nil {
				return nil, err
			}
		}
	}
	if spec.Seeds == "" {
		spec.Seeds = net.JoinHostPort(spec.Addr, strconv.Itoa(spec.StoragePort))
	}
	cmd := exec.Command("bash", script, "start", spec.Dir, spec.Addr,
		strconv.Itoa(spec.NativePort), strconv.Itoa(spec.StoragePort), spec.Seeds, spec.Heap)
	// The node is stopped when this process exits, even if it dies before Stop.
	cmd.Env = append(os.Environ(), "CASSANDRA_STOP_WITH_PID="+strconv.Itoa(os.Getpid()))
	if spec.RingDelay > 0 {
		cmd.Env = append(cmd.Env, "CASSANDRA_RING_DELAY_MS="+strconv.FormatInt(spec.RingDelay.Milliseconds(), 10))
	}
	if spec.StartTimeout > 0 {
		cmd.Env = append(cmd.Env, "CASSANDRA_START_TIMEOUT="+strconv.Itoa(int(spec.StartTimeout.Seconds())))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("cassandratest: run.sh start: %v\n%s", err, tail(stderr.String(), 4000))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(lastLine(stdout.String())))
	if err != nil {
		return nil, fmt.Errorf("cassandratest: run.sh start printed no pid: %q", stdout.String())
	}
	return &Node{Dir: spec.Dir, Addr: spec.Addr, NativePort: spec.NativePort, StoragePort: spec.StoragePort, PID: pid, script: script}, nil
}

// Stop stops the node gracefully (SIGTERM by PID, then SIGKILL if it lingers).
func (n *Node) Stop() error { return n.signal("stop") }

// Kill stops the node with SIGKILL, as a crash would.
func (n *Node) Kill() error { return n.signal("kill") }

func (n *Node) signal(verb string) error {
	n.stopOnce.Do(func() {
		out, err := exec.Command("bash", n.script, verb, n.Dir).CombinedOutput()
		if err != nil {
			n.stopErr = fmt.Errorf("cassandratest: run.sh %s: %v: %s", verb, err, out)
		}
	})
	return n.stopErr
}

// Log returns the end of the node's system log, for failure messages.
func (n *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "log", "system.log"))
	return tail(string(b), 6000)
}

func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Package is the Cassandra a test package shares: the one named by FLOODGATE_CASSANDRA, or a
// node started on the first Require and stopped by Close.
type Package struct {
	once     sync.Once
	hostPort string
	node     *Node
	err      error  // why no Cassandra is available
	dir      string // temp dir of the started node
}

// StartPackage gives a test package its Cassandra; call Close from TestMain after m.Run. The
// node starts lazily, so a run of tests that need no Cassandra pays nothing.
func StartPackage() *Package { return &Package{} }

func (p *Package) start() {
	if hp := os.Getenv(EnvHosts); hp != "" {
		p.hostPort = hp
		return
	}
	dir, err := os.MkdirTemp("", "floodgate-cassandra-")
	if err != nil {
		p.err = err
		return
	}
	begin := time.Now()
	n, err := Start(NodeSpec{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		p.err = err
		return
	}
	fmt.Fprintf(os.Stderr, "cassandratest: node %s (pid %d) up in %s\n", n.HostPort(), n.PID, time.Since(begin).Round(100*time.Millisecond))
	p.hostPort, p.node, p.dir = n.HostPort(), n, dir
}

// Require returns the contact point, or ends the test: Fatal under CI, Skip elsewhere.
func (p *Package) Require(t testing.TB) string {
	t.Helper()
	p.once.Do(p.start)
	if p.err != nil {
		if InCI() {
			t.Fatalf("Cassandra is required in CI and could not start: %v", p.err)
		}
		t.Skipf("no Cassandra (set %s=host:port or install a JDK 17 and Maven): %v", EnvHosts, p.err)
	}
	return p.hostPort
}

// Close stops a node the package started and removes its files.
func (p *Package) Close() {
	p.once.Do(func() {}) // no start after Close
	if p.node != nil {
		if err := p.node.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// PeerCount asks the node at hostPort how many peers it knows (system.peers_v2), through a
// connection to that node only: the table is node-local.
func PeerCount(hostPort string) (int, error) {
	cluster := gocql.NewCluster(hostPort)
	cluster.DisableInitialHostLookup = true
	cluster.Timeout = 5 * time.Second
	cluster.ConnectTimeout = 5 * time.Second
	cluster.NumConns = 1
	cluster.Logger = gocql.NewLogger(gocql.LogLevelNone)
	s, err := cluster.CreateSession()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var n int
	if err := s.Query("SELECT count(*) FROM system.peers_v2").Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

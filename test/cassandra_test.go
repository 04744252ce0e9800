package test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/cassandraengine/cassandratest"
)

// cassandraForTest is a contact point for one test: the node named by FLOODGATE_CASSANDRA (CI
// starts one for the whole run), or a node started for this test and stopped after it.
func cassandraForTest(t *testing.T) string {
	t.Helper()
	if hp := os.Getenv(cassandratest.EnvHosts); hp != "" {
		return hp
	}
	n, err := cassandratest.Start(cassandratest.NodeSpec{Dir: t.TempDir()})
	if err != nil {
		if cassandratest.InCI() {
			t.Fatalf("Cassandra is required in CI and could not start: %v", err)
		}
		t.Skipf("no Cassandra: %v", err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n.HostPort()
}

// storeOnCassandra is the store config (the timeseries section) of namespace "events" on
// Cassandra, in keyspace ks.
func storeOnCassandra(hosts []string, ks string, rf int, indent string) string {
	y := fmt.Sprintf(`engines:
  cassandra:
    hosts: [%s]
    timeout: 3s
    slices_ahead: 1
    defaults: {replication: {class: SimpleStrategy, replication_factor: "%d"}, read_consistency: LOCAL_QUORUM, write_consistency: LOCAL_QUORUM}
namespaces:
  events:
    engine: cassandra
    engine_options: {keyspace: %s}
    time_partition: {seconds_per_time_slice: 86400, seconds_per_time_bucket: 3600, event_buckets: 4}
    accept_limit: 24h
    retention: {close_after: 24h, delete_after: 48h}
    index: {field_mapping: {deviceType: KEYWORD}}
    slos: {read: {max: 3s}, write: {max: 5s}}
`, strings.Join(quoteAll(hosts), ", "), rf, ks)
	return indent + strings.ReplaceAll(strings.TrimRight(y, "\n"), "\n", "\n"+indent) + "\n"
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// startStoreProcess runs cmd/timeseries with a store config file.
func startStoreProcess(t *testing.T, storeYAML string) *storeNode {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "store.yaml")
	writeFile(t, cfg, storeYAML)
	return launchStore(t, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-namespaces", cfg)
}

func eventJSON(tsid, id string, at time.Time) string {
	return fmt.Sprintf(`{"timeSeriesId":%q,"eventTime":%q,"eventId":%q,"eventItems":[{"eventItemKey":"ZGV2aWNlVHlwZQ==","eventItemValue":"aW9z"}]}`,
		tsid, at.UTC().Format("2006-01-02T15:04:05.000Z07:00"), id)
}

func readSeries(tsid string) string {
	return `{"namespace":"events","timeSeriesId":"` + tsid + `","timeInterval":{"start":"2000-01-01T00:00:00.000Z","end":"2100-01-01T00:00:00.000Z"},"pageSize":1000}`
}

// cmd/timeseries and the gateway serve a namespace on Cassandra from config alone, and see
// each other's writes (the data lives in the cluster, not in either process).
func TestStoreAndGatewayServeCassandraNamespaceFromConfig(t *testing.T) {
	hp := cassandraForTest(t)
	ks := fmt.Sprintf("e2e_%d", time.Now().UnixNano()%1_000_000_000)
	store := startStoreProcess(t, storeOnCassandra([]string{hp}, ks, 1, ""))
	c := httpClient(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if st, body := post(t, c, "http://"+store.addr+"/ts/WriteEventRecordsSync",
		`{"namespace":"events","events":[`+eventJSON("dev-1", "from-store", now.Add(-time.Second))+`]}`); st != 200 {
		t.Fatalf("write to cmd/timeseries: %d %s", st, body)
	}

	dir := t.TempDir()
	gwCfg := filepath.Join(dir, "gateway.yaml")
	writeFile(t, gwCfg, `
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
routes:
  - name: timeseries
    match: {path_prefix: /ts}
    timeseries: {}
timeseries:
  data_dir: `+filepath.Join(dir, "ts")+`
`+storeOnCassandra([]string{hp}, ks, 1, "  "))
	gw := startProcess(t, gwCfg)
	if st, body := post(t, c, "http://"+gw.addr+"/ts/WriteEventRecordsSync",
		`{"namespace":"events","events":[`+eventJSON("dev-1", "from-gateway", now)+`]}`); st != 200 {
		t.Fatalf("write through the gateway: %d %s", st, body)
	}
	for _, addr := range []string{store.addr, gw.addr} {
		st, body := post(t, c, "http://"+addr+"/ts/ReadEventRecords", readSeries("dev-1"))
		if st != 200 || !strings.Contains(body, `"from-gateway"`) || strings.Index(body, `"from-store"`) < strings.Index(body, `"from-gateway"`) {
			t.Fatalf("read from %s: %d %s (want both events, newest first)", addr, st, body)
		}
	}
}

// TestCassandraClusterKillNode is the resilience experiment on a three-node cluster (opt-in:
// FLOODGATE_EXPERIMENT=1, about two minutes): replication factor 3, LOCAL_QUORUM; two
// cmd/timeseries processes on the cluster behind a gateway route that hedges reads. One
// Cassandra node is killed with SIGKILL while sync writes run; every acknowledged write must be
// readable afterwards, and reads must keep answering throughout.
//
//	FLOODGATE_EXPERIMENT=1 go test -run TestCassandraClusterKillNode -v -timeout 15m ./test/
func TestCassandraClusterKillNode(t *testing.T) {
	if os.Getenv("FLOODGATE_EXPERIMENT") == "" {
		t.Skip("experiment: set FLOODGATE_EXPERIMENT=1 (starts three Cassandra nodes)")
	}
	const native, storage = 22242, 22270
	addrs := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	seeds := fmt.Sprintf("%s:%d", addrs[0], storage)
	nodes := make([]*cassandratest.Node, len(addrs))
	startNode := func(i int) error {
		n, err := cassandratest.Start(cassandratest.NodeSpec{Dir: t.TempDir(), Addr: addrs[i], NativePort: native, StoragePort: storage, Seeds: seeds, Heap: "512M",
			StartTimeout: 8 * time.Minute, RingDelay: 15 * time.Second}) // JVMs starting on a shared 2-core machine
		if err != nil {
			return err
		}
		nodes[i] = n
		t.Cleanup(func() { _ = n.Stop() })
		return nil
	}
	began := time.Now()
	if err := startNode(0); err != nil {
		t.Fatal(err)
	}
	// One at a time: a node joins by gossiping with the seed, which must be up and answering.
	for i := 1; i < len(addrs); i++ {
		if err := startNode(i); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	hosts := make([]string, len(nodes))
	for i, n := range nodes {
		hosts[i] = n.HostPort()
	}
	if err := awaitRing(hosts, 3, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("three nodes up and joined in %s", time.Since(began).Round(time.Second))

	ks := fmt.Sprintf("kill_%d", time.Now().UnixNano()%1_000_000_000)
	storeCfg := storeOnCassandra(hosts, ks, 3, "")
	s1 := startStoreProcess(t, storeCfg)
	s2 := startStoreProcess(t, storeCfg)
	gw := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
origins:
  store:
    instances: [{address: %q}, {address: %q}]
    timeouts: {connect: 500ms, response: 5s}
    hedge: {delay: 50ms}
    lb: round_robin
routes:
  - name: events
    match: {path_prefix: /events}
    rewrite: {strip_prefix: /events, add_prefix: /ts}
    origin: store
    idempotent: true
`, s1.addr, s2.addr))
	c := httpClient(t)

	// Writers: sync batches of 10 to the two store processes in turn; every 200 is recorded.
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		failures int
		stop     = make(chan struct{})
		killed   = make(chan struct{})
		progress = make(chan struct{}, 1) // a batch was acknowledged
	)
	const series = 8
	writer := func(w int) {
		defer wg.Done()
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			target := []*storeNode{s1, s2}[b%2]
			var evs, ids []string
			now := time.Now().UTC()
			for i := 0; i < 10; i++ {
				id := fmt.Sprintf("w%d-b%05d-%d", w, b, i)
				evs = append(evs, eventJSON(fmt.Sprintf("kill-%d", (w+i)%series), id, now.Add(-time.Duration(i)*time.Millisecond)))
				ids = append(ids, id)
			}
			resp, err := c.Post("http://"+target.addr+"/ts/WriteEventRecordsSync", "application/json",
				strings.NewReader(`{"namespace":"events","events":[`+strings.Join(evs, ",")+`]}`))
			ok := err == nil && resp.StatusCode == 200
			if resp != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			if ok {
				for _, id := range ids {
					acked[id] = true
				}
			} else {
				failures++
			}
			mu.Unlock()
			if ok {
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}
	}
	// A reader through the gateway: reads must keep answering while a node dies.
	var readOK, readFail, readOKAfterKill int
	var slowestRead time.Duration
	reader := func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			resp, err := c.Post("http://"+gw.addr+"/events/ReadEventRecords", "application/json", strings.NewReader(readSeries(fmt.Sprintf("kill-%d", i%series))))
			d := time.Since(start)
			ok := err == nil && resp.StatusCode == 200
			if resp != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			if ok {
				readOK++
				select {
				case <-killed:
					readOKAfterKill++
				default:
				}
			} else {
				readFail++
			}
			slowestRead = max(slowestRead, d)
			mu.Unlock()
		}
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go writer(w)
	}
	wg.Add(1)
	go reader()

	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	awaitAcked := func(n int, within time.Duration) {
		deadline := time.NewTimer(within)
		defer deadline.Stop()
		for ackedCount() < n {
			select {
			case <-progress:
			case <-deadline.C:
				return
			}
		}
	}
	awaitAcked(2000, 60*time.Second)
	before := ackedCount()
	victim := nodes[2]
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	close(killed)
	t.Logf("killed node %s (pid %d) with SIGKILL after %d acknowledged events", victim.HostPort(), victim.PID, before)
	awaitAcked(before+3000, 90*time.Second)
	close(stop)
	wg.Wait()
	after := ackedCount()
	mu.Lock()
	t.Logf("writes: %d events acknowledged (%d after the kill), %d batches failed; reads through the gateway: %d ok (%d after the kill), %d failed, slowest %s",
		after, after-before, failures, readOK, readOKAfterKill, readFail, slowestRead.Round(time.Millisecond))
	mu.Unlock()
	if after-before < 1000 {
		t.Fatalf("only %d events acknowledged after the kill: writes at LOCAL_QUORUM with RF 3 should go on with one node down", after-before)
	}
	if readOKAfterKill == 0 {
		t.Fatal("no read succeeded after the kill")
	}

	// Every acknowledged write is readable (through the gateway, two of three replicas up).
	seen := map[string]bool{}
	for s := 0; s < series; s++ {
		req := readSeries(fmt.Sprintf("kill-%d", s))
		for page := 0; ; page++ {
			st, body := post(t, c, "http://"+gw.addr+"/events/ReadEventRecords", req)
			if st != 200 {
				t.Fatalf("read back series %d page %d: %d %.300s", s, page, st, body)
			}
			for _, part := range strings.Split(body, `"eventId":"`)[1:] {
				seen[part[:strings.IndexByte(part, '"')]] = true
			}
			tok := between(body, `"nextPageToken":"`, `"`)
			if tok == "" {
				break
			}
			req = strings.TrimSuffix(readSeries(fmt.Sprintf("kill-%d", s)), "}") + `,"pageToken":"` + tok + `"}`
		}
	}
	lost := 0
	for id := range acked {
		if !seen[id] {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged event %s is not readable", id)
			}
		}
	}
	t.Logf("read back %d events; %d of %d acknowledged events lost", len(seen), lost, len(acked))
	if lost > 0 {
		t.Fatalf("%d acknowledged writes lost", lost)
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// awaitRing waits until every node lists the others as peers, so writes at LOCAL_QUORUM see
// three replicas.
func awaitRing(hosts []string, want int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ok := true
		for _, h := range hosts {
			n, err := cassandratest.PeerCount(h)
			if err != nil || n != want-1 {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster did not form within %s", within)
		}
		time.Sleep(500 * time.Millisecond) // gossip has no event to await from outside
	}
}

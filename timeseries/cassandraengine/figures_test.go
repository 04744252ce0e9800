package cassandraengine_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/cassandraengine"
	"github.com/floodgate-dev/floodgate/timeseries/cassandraengine/cassandratest"
	"github.com/floodgate-dev/floodgate/timeseries/pebbleengine"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// TestFigures measures the store's figures on pebble and on a single Cassandra node in one run
// (opt-in, a few minutes; the Cassandra node is started for it, because measuring its disk use
// needs a graceful stop that flushes memtables):
//
//	FLOODGATE_EXPERIMENT=1 go test -run TestFigures -v -timeout 20m ./timeseries/cassandraengine/
//
// Workloads (the demo namespace: daily slices, hourly buckets, 4 event buckets, 5 indexed
// fields; events carry deviceType, status and a 25-byte payload):
//   - sync write: 400 sequential WriteEventRecordsSync calls of 10 events, p50/p99;
//   - point read: one series of 10,000 events over a day (plus 20,000 events of 20 other
//     series), 400 reads of a random one-hour window, first page of 100, p50/p99;
//   - async ingest: 50,000 events through WriteEventRecords in calls of 100 until the queue
//     has written them all, events/s;
//   - disk per event: bytes on disk after the data is flushed (pebble closed; Cassandra
//     drained by a graceful stop), over every event written.
func TestFigures(t *testing.T) {
	if os.Getenv("FLOODGATE_EXPERIMENT") == "" {
		t.Skip("experiment: set FLOODGATE_EXPERIMENT=1")
	}
	type figures struct {
		name               string
		writeP50, writeP99 time.Duration
		readP50, readP99   time.Duration
		ingest             float64
		events             int
		diskBytes          int64
	}
	var results []figures

	// Pebble.
	{
		dir := t.TempDir()
		eng, err := pebbleengine.Open(dir, pebbleengine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f := figures{name: "pebble (embedded)"}
		f.writeP50, f.writeP99, f.readP50, f.readP99, f.ingest, f.events = runWorkloads(t, eng, timeseries.DemoConfig())
		t.Logf("%s done", f.name)
		if err := eng.Close(); err != nil {
			t.Fatal(err)
		}
		f.diskBytes = dirSize(t, dir, func(string) bool { return true })
		results = append(results, f)
	}

	// Cassandra, one node, RF 1, LOCAL_QUORUM.
	{
		dir := t.TempDir()
		node, err := cassandratest.Start(cassandratest.NodeSpec{Dir: dir, Heap: "1G"})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Stop()
		cfg := timeseries.DemoConfig()
		ks := fmt.Sprintf("fig_%d", time.Now().UnixNano()%1_000_000_000)
		name, nc := timeseries.DemoNamespace()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		eng, err := cassandraengine.Open(ctx, singleNode(node.HostPort()), map[string]cassandraengine.Namespace{name: {
			Options: cassandraengine.NamespaceOptions{Keyspace: ks},
			SliceMs: nc.TimePartition.SecondsPerTimeSlice * 1000, BucketMs: nc.TimePartition.SecondsPerTimeBucket * 1000, EventBuckets: nc.TimePartition.EventBuckets,
		}}, t.Logf)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		f := figures{name: "cassandra (1 node, RF 1, LOCAL_QUORUM)"}
		f.writeP50, f.writeP99, f.readP50, f.readP99, f.ingest, f.events = runWorkloads(t, eng, cfg)
		t.Logf("%s done", f.name)
		if err := eng.Close(); err != nil {
			t.Fatal(err)
		}
		if err := node.Stop(); err != nil { // drains: memtables are flushed to sstables
			t.Fatal(err)
		}
		f.diskBytes = dirSize(t, filepath.Join(dir, "data"), func(p string) bool { return strings.Contains(p, "/"+ks+"/") })
		results = append(results, f)
	}

	t.Logf("%-40s %12s %12s %12s %12s %14s %12s", "engine", "write p50", "write p99", "read p50", "read p99", "async ev/s", "bytes/event")
	for _, f := range results {
		t.Logf("%-40s %12s %12s %12s %12s %14.0f %12.1f", f.name, ms(f.writeP50), ms(f.writeP99), ms(f.readP50), ms(f.readP99), f.ingest, float64(f.diskBytes)/float64(f.events))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func dirSize(t *testing.T, root string, keep func(string) bool) int64 {
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !keep(p) {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func demoEvent(tsid string, at time.Time, id string, i int) timeseries.EventRecord {
	b := func(s string) string { return b64s(s) }
	return timeseries.EventRecord{TimeSeriesID: tsid, EventTime: at.UTC().Format("2006-01-02T15:04:05.000Z07:00"), EventID: id, EventItems: []timeseries.EventItem{
		{EventItemKey: b("deviceType"), EventItemValue: b([]string{"ios", "android", "web", "tv"}[i%4])},
		{EventItemKey: b("status"), EventItemValue: b(strconv.Itoa([]int{200, 404, 500}[i%3]))},
		{EventItemKey: b("payload"), EventItemValue: b("some opaque payload bytes")},
	}}
}

func pct(lat []time.Duration, p float64) time.Duration {
	slices.Sort(lat)
	return lat[int(p*float64(len(lat)-1))]
}

// runWorkloads runs the four workloads on eng and returns the figures and how many events it
// wrote in total.
func runWorkloads(t *testing.T, eng storage.Engine, cfg timeseries.Config) (wp50, wp99, rp50, rp99 time.Duration, ingest float64, events int) {
	// Latencies are measured, not cut: the SLOs are raised so no read answers partial and no
	// sync write answers 504 on a busy machine.
	for name, nc := range cfg.Namespaces {
		nc.SLOs.Read.Max, nc.SLOs.Write.Max = 30*time.Second, 30*time.Second
		cfg.Namespaces[name] = nc
	}
	now := time.Now().Truncate(time.Millisecond)
	svc, err := timeseries.New(cfg, eng, timeseries.WithClock(func() time.Time { return now }), timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	call := func(op string, req any, want int) []byte {
		body, _ := json.Marshal(req)
		st, resp := svc.Handle(context.Background(), op, body)
		if st != want {
			t.Fatalf("%s: %d %s", op, st, resp)
		}
		return resp
	}
	// Warm-up: the first write creates today's slice tables.
	call(timeseries.OpWriteSync, timeseries.WriteRequest{Namespace: "demo", Events: []timeseries.EventRecord{demoEvent("warm", now, "w", 0)}}, 200)
	events++

	var lat []time.Duration
	for i := 0; i < 400; i++ {
		evs := make([]timeseries.EventRecord, 10)
		for j := range evs {
			evs[j] = demoEvent(fmt.Sprint("dev", i%100), now.Add(-time.Duration(i*10+j)*time.Millisecond), fmt.Sprint("s", i, "-", j), j)
		}
		body, _ := json.Marshal(timeseries.WriteRequest{Namespace: "demo", Events: evs})
		start := time.Now()
		st, resp := svc.Handle(context.Background(), timeseries.OpWriteSync, body)
		lat = append(lat, time.Since(start))
		if st != 200 {
			t.Fatalf("sync write: %d %s", st, resp)
		}
		events += 10
	}
	wp50, wp99 = pct(lat, 0.5), pct(lat, 0.99)

	var batch []timeseries.EventRecord
	flush := func() {
		if len(batch) > 0 {
			call(timeseries.OpWriteSync, timeseries.WriteRequest{Namespace: "demo", Events: batch}, 200)
			events += len(batch)
			batch = batch[:0]
		}
	}
	for i := 0; i < 10_000; i++ {
		batch = append(batch, demoEvent("hot", now.Add(-time.Duration(i)*8640*time.Millisecond), strconv.Itoa(i), i))
		if len(batch) == 100 {
			flush()
		}
	}
	for i := 0; i < 20_000; i++ {
		batch = append(batch, demoEvent(fmt.Sprint("other", i%20), now.Add(-time.Duration(i)*4320*time.Millisecond), strconv.Itoa(i), i))
		if len(batch) == 100 {
			flush()
		}
	}
	flush()
	rnd := rand.New(rand.NewPCG(1, 2))
	lat = lat[:0]
	for i := 0; i < 400; i++ {
		end := now.Add(-time.Duration(rnd.Int64N(int64(23 * time.Hour))))
		req := timeseries.ReadRequest{Namespace: "demo", TimeSeriesID: "hot", PageSize: 100,
			TimeInterval: timeseries.TimeInterval{Start: end.Add(-time.Hour).UTC().Format(time.RFC3339Nano), End: end.UTC().Format(time.RFC3339Nano)}}
		body, _ := json.Marshal(req)
		start := time.Now()
		st, resp := svc.Handle(context.Background(), timeseries.OpRead, body)
		lat = append(lat, time.Since(start))
		var er timeseries.EventsResponse
		if st != 200 || json.Unmarshal(resp, &er) != nil || len(er.Events) < 100 || er.Partial {
			t.Fatalf("point read: %d, %d events: %.200s", st, len(er.Events), resp)
		}
	}
	rp50, rp99 = pct(lat, 0.5), pct(lat, 0.99)

	const total, per = 50_000, 100
	start := time.Now()
	for sent := 0; sent < total; {
		evs := make([]timeseries.EventRecord, per)
		for j := range evs {
			n := sent + j
			evs[j] = demoEvent(fmt.Sprint("dev", n%1000), now.Add(-time.Duration(n%86_400_000)*time.Millisecond), "a"+strconv.Itoa(n), n)
		}
		body, _ := json.Marshal(timeseries.WriteRequest{Namespace: "demo", Events: evs})
		switch st, resp := svc.Handle(context.Background(), timeseries.OpWrite, body); st {
		case 202:
			sent += per
		case 503:
			time.Sleep(time.Millisecond) // back off like a client honouring Retry-After
		default:
			t.Fatalf("async write: %d %s", st, resp)
		}
	}
	if err := svc.Close(context.Background()); err != nil { // flushes the queue durably
		t.Fatal(err)
	}
	ingest = total / time.Since(start).Seconds()
	events += total
	return
}

func b64s(s string) string {
	return base64.StdEncoding.EncodeToString([]byte(s))
}

package timeseries

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

func batchOf(n, from int) []EventRecord {
	out := make([]EventRecord, n)
	for i := range out {
		out[i] = ev("dev1", baseTime.Add(-time.Duration(from+i)*time.Second), eventID(from+i))
	}
	return out
}

func TestAsyncQueueFullRejectsClearlyAndWhole(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering = QueueBuffering{Coalesce: time.Millisecond, BufferCapacity: 100, MaxBatchEvents: 100}
	cfg.Namespaces["ns"] = ns
	gate := &gateEngine{applyGate: make(chan struct{}), started: make(chan struct{}, 1)}
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { gate.Engine = e; return gate })

	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(50, 0)}, 202, nil)
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(40, 50)}, 202, nil)
	<-gate.started // the writer holds 90 events in a stalled engine write

	// 20 more do not fit in the remaining 10: the whole batch is refused, none admitted.
	body, _ := json.Marshal(WriteRequest{Namespace: "ns", Events: batchOf(20, 200)})
	r := f.svc.Serve(t.Context(), OpWrite, body)
	if r.Status != 503 || r.RetryAfter <= 0 {
		t.Fatalf("queue full: status %d retryAfter %s, want 503 with Retry-After: %s", r.Status, r.RetryAfter, r.Body)
	}
	var eb ErrorBody
	if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Reason != "queue_full" {
		t.Fatalf("queue full body %s: want reason queue_full", r.Body)
	}
	if q := f.svc.QueueStats()["ns"]; q.Held != 90 || q.Capacity != 100 {
		t.Fatalf("queue stats %+v, want 90 of 100 held", q)
	}
	close(gate.applyGate)
	waitQueuesDrained(t, f.svc)
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(20, 200)}, 202, nil)
	waitQueuesDrained(t, f.svc)
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-time.Hour), baseTime.Add(time.Second)), PageSize: 500})
	if len(got) != 110 {
		t.Fatalf("after draining: %d events, want 110", len(got))
	}
}

func TestCloseFlushesAsyncQueueDurably(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(baseTime)
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering.Coalesce = time.Minute // nothing is written before Close
	cfg.Namespaces["ns"] = ns
	s, err := Open(dir, cfg, WithClock(clk.now), WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(WriteRequest{Namespace: "ns", Events: batchOf(30, 0)})
	if st, resp := s.Handle(t.Context(), OpWrite, body); st != 202 {
		t.Fatalf("async write: %d %s", st, resp)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Handle(t.Context(), OpWrite, body); st != 503 {
		t.Fatalf("write after Close: status %d, want 503", st)
	}
	s2, err := Open(dir, cfg, WithClock(clk.now), WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(t.Context())
	f := &fixture{t: t, svc: s2, clock: clk}
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-time.Hour), baseTime.Add(time.Second))})
	want := ids(batchOf(30, 0))
	if !slices.Equal(ids(got), want) {
		t.Fatalf("after Close and reopen: %v, want %v", ids(got), want)
	}
}

func TestSyncWriteSLOTimeout(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.SLOs.Write = SLO{Max: 30 * time.Millisecond}
	cfg.Namespaces["ns"] = ns
	gate := &gateEngine{applyGate: make(chan struct{})}
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { gate.Engine = e; return gate })
	st, body := f.call(OpWriteSync, WriteRequest{Namespace: "ns", Events: batchOf(3, 0)})
	checkError(t, st, body, 504, "", -1, "retrying is safe")
	close(gate.applyGate) // the commit completes; Close waits for it
}

func TestAsyncQueueCoalescesDuplicates(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering.Coalesce = time.Minute // hold everything in the queue
	cfg.Namespaces["ns"] = ns
	f := newFixture(t, cfg, nil)
	for i := 0; i < 3; i++ {
		f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(20, 0)}, 202, nil)
	}
	if q := f.svc.QueueStats()["ns"]; q.Held != 20 {
		t.Fatalf("three copies of 20 events hold %d slots, want 20", q.Held)
	}
}

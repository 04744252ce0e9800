package timeseries

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
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

// TestAsyncQueueFullWaitsForRoom: with queue_buffering.full_wait a batch that does not fit
// waits for the writer to make room and is then admitted (a client is not asked to decode and
// re-send it); past full_wait it is refused as before.
func TestAsyncQueueFullWaitsForRoom(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering = QueueBuffering{Coalesce: time.Millisecond, BufferCapacity: 100, MaxBatchEvents: 100, FullWait: 10 * time.Second}
	cfg.Namespaces["ns"] = ns
	gate := &gateEngine{applyGate: make(chan struct{}), started: make(chan struct{}, 1)}
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { gate.Engine = e; return gate })

	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(50, 0)}, 202, nil)
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(40, 50)}, 202, nil)
	<-gate.started // 90 events held: in a stalled engine write or queued behind it

	body, _ := json.Marshal(WriteRequest{Namespace: "ns", Events: batchOf(20, 200)})
	answered := make(chan Response, 1)
	go func() { answered <- f.svc.Serve(t.Context(), OpWrite, body) }()
	close(gate.applyGate) // room is made; the waiting batch goes in
	if r := <-answered; r.Status != 202 {
		t.Fatalf("batch waiting for room: status %d %s, want 202", r.Status, r.Body)
	}
	waitQueuesDrained(t, f.svc)
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-time.Hour), baseTime.Add(time.Second)), PageSize: 500})
	if len(got) != 110 {
		t.Fatalf("after draining: %d events, want 110", len(got))
	}

	// Past full_wait: refused whole, with the usual answer.
	ns.QueueBuffering.FullWait = 20 * time.Millisecond
	cfg.Namespaces["ns"] = ns
	if err := f.svc.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	gate.mu.Lock()
	gate.applyGate = make(chan struct{})
	gate.mu.Unlock()
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(50, 300)}, 202, nil)
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(40, 350)}, 202, nil)
	<-gate.started
	start := time.Now()
	r := f.svc.Serve(t.Context(), OpWrite, body)
	var eb ErrorBody
	if r.Status != 503 || json.Unmarshal(r.Body, &eb) != nil || eb.Reason != "queue_full" {
		t.Fatalf("after full_wait: status %d %s, want 503 queue_full", r.Status, r.Body)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("refused after %s, before full_wait (20ms)", waited)
	}
	if q := f.svc.QueueStats()["ns"]; q.Held != 90 {
		t.Fatalf("queue stats %+v, want the 90 stalled events only", q)
	}
	close(gate.applyGate)
	waitQueuesDrained(t, f.svc)
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

// Issue 15 item 1: a re-write of an event inside one coalescing window merges per item, as
// the sync path (and the per-item idempotency key) does; the first write's other items and
// index postings are not lost.
func TestAsyncRewriteInsideCoalesceWindowMergesPerItem(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering.Coalesce = time.Minute // both writes wait in the queue together
	cfg.Namespaces["ns"] = ns
	f := newFixture(t, cfg, nil)
	at := baseTime.Add(-time.Minute)
	first := ev("dev1", at, "async", "device", "ios", "country", "fr", "status", "500")
	second := ev("dev1", at, "async", "device", "android")
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: []EventRecord{first}}, 202, nil)
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: []EventRecord{second}}, 202, nil)
	if q := f.svc.QueueStats()["ns"]; q.Held != 1 {
		t.Fatalf("two writes of one event hold %d slots, want 1", q.Held)
	}
	// The same two writes through the sync path, as the reference.
	first.EventID, second.EventID = "sync", "sync"
	f.writeSync(first)
	f.writeSync(second)
	f.restart(cfg) // Close flushes the queue durably
	iv := interval(at.Add(-time.Minute), baseTime)
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv})
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	items := func(r EventRecord) map[string]string {
		m := map[string]string{}
		for _, it := range r.EventItems {
			m[unb64(t, it.EventItemKey)] = unb64(t, it.EventItemValue)
		}
		return m
	}
	want := map[string]string{"device": "android", "country": "fr", "status": "500"}
	for _, r := range got {
		if g := items(r); !maps.Equal(g, want) {
			t.Fatalf("event %s items %v, want %v", r.EventID, g, want)
		}
	}
	for _, q := range []SearchQuery{eqQ("country", "fr"), eqQ("device", "android")} {
		if found := ids(f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &q})); !slices.Equal(found, []string{"async", "sync"}) {
			t.Fatalf("search %+v: %v, want both events", q, found)
		}
	}
	if found := f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios"))}); len(found) != 0 {
		t.Fatalf("overwritten value still matches: %v", ids(found))
	}
}

// Issue 15 item 8: the queue is bounded in bytes as well as events, so large events cannot
// pile up gigabytes while the event count is still low.
func TestAsyncQueueIsBoundedInBytes(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering = QueueBuffering{Coalesce: time.Millisecond, BufferCapacity: 1000, BufferBytes: 64 << 10, Writers: 1, MaxBatchEvents: 100}
	ns.Limits.MaxItemBytes = 16 << 10
	cfg.Namespaces["ns"] = ns
	gate := &gateEngine{applyGate: make(chan struct{}), started: make(chan struct{}, 1)}
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { gate.Engine = e; return gate })
	big := func(i int) EventRecord {
		return ev("dev1", baseTime.Add(-time.Duration(i)*time.Second), eventID(i), "blob", strings.Repeat("x", 8<<10))
	}
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: []EventRecord{big(0)}}, 202, nil)
	<-gate.started // the writer is stalled holding one event
	accepted := 1
	for i := 1; i < 100; i++ {
		st, body := f.call(OpWrite, WriteRequest{Namespace: "ns", Events: []EventRecord{big(i)}})
		if st == 503 {
			checkError(t, st, body, 503, "", -1, "bytes held")
			break
		}
		if st != 202 {
			t.Fatalf("write %d: %d %s", i, st, body)
		}
		accepted++
	}
	q := f.svc.QueueStats()["ns"]
	if accepted < 4 || accepted > 8 || q.HeldBytes > 64<<10 || q.CapacityBytes != 64<<10 {
		t.Fatalf("accepted %d events of 8KiB into a 64KiB queue; stats %+v", accepted, q)
	}
	close(gate.applyGate)
	waitQueuesDrained(t, f.svc)
	if q := f.svc.QueueStats()["ns"]; q.Held != 0 || q.HeldBytes != 0 {
		t.Fatalf("drained queue still accounts %+v", q)
	}
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

package timeseries

import (
	"slices"
	"testing"
	"time"
)

// restart closes the fixture's service and serves cfg from the same engine, as a process
// restart with an edited config file would.
func (f *fixture) restart(cfg Config) {
	f.t.Helper()
	if err := f.svc.Close(f.t.Context()); err != nil {
		f.t.Fatal(err)
	}
	svc, err := New(cfg, f.engine, WithClock(f.clock.now), WithoutRetentionLoop(), WithLogf(f.t.Logf))
	if err != nil {
		f.t.Fatal(err)
	}
	f.svc = svc
}

// Issue 15 item 5: the partitioning lives in the slice table, so restarting (or reloading)
// with another time_partition keeps old events readable and applies to new slices only.
func TestTimePartitionChangeKeepsOldDataReadable(t *testing.T) {
	f := newFixture(t, testConfig(), nil) // 1h slices, 10min buckets, 4 event buckets
	start := baseTime.Add(-10 * time.Hour)
	var recs []EventRecord
	for i := 0; i < 200; i++ { // one event every 3 minutes over 10h
		recs = append(recs, ev("dev1", start.Add(time.Duration(i)*3*time.Minute), eventID(i), "device", "ios"))
	}
	f.writeSync(recs[:100]...)
	iv := interval(start.Add(-time.Hour), baseTime.Add(time.Minute))
	want := func(n int) []string {
		out := ids(recs[:n])
		slices.Reverse(out)
		return out
	}

	for _, tp := range []TimePartition{
		{SecondsPerTimeSlice: 86400, SecondsPerTimeBucket: 3600, EventBuckets: 7},
		{SecondsPerTimeSlice: 1200, SecondsPerTimeBucket: 300, EventBuckets: 2},
	} {
		cfg := testConfig()
		ns := cfg.Namespaces["ns"]
		ns.TimePartition = tp
		cfg.Namespaces["ns"] = ns
		f.restart(cfg)
		if got := ids(f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv})); !slices.Equal(got, want(100)) {
			t.Fatalf("after restart with %+v: read %d events, want %d in order", tp, len(got), 100)
		}
	}
	// New writes land in new slices with the new partitioning; old and new are all readable,
	// by read and by search.
	f.writeSync(recs[100:]...)
	if got := ids(f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: 7})); !slices.Equal(got, want(200)) {
		t.Fatalf("read across partitionings: %d events, want 200 in order", len(got))
	}
	if got := ids(f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios")), PageSize: 9})); !slices.Equal(got, want(200)) {
		t.Fatalf("search across partitionings: %d events, want 200 in order", len(got))
	}
	metas, err := f.engine.Slices(t.Context(), "ns")
	if err != nil {
		t.Fatal(err)
	}
	var widths []int64
	for i, m := range metas {
		widths = append(widths, (m.End-m.Start)/60_000)
		if i > 0 && m.Start < metas[i-1].End {
			t.Fatalf("slices overlap: %+v", metas)
		}
	}
	if !slices.Contains(widths, 60) || !slices.Contains(widths, 20) {
		t.Fatalf("slice widths (min) %v: want the old 1h slices and new 20min ones", widths)
	}

	// Retention uses each slice's own end: with 20-minute slices now configured, an old
	// one-hour slice is not dropped until its own end + delete_after.
	oldest := metas[0]
	f.clock.set(time.UnixMilli(oldest.End).Add(72*time.Hour - time.Millisecond))
	dropped, err := f.svc.EnforceRetention(t.Context())
	if err != nil || len(dropped) != 0 {
		t.Fatalf("dropped %v before the slice's own end + delete_after (err %v)", dropped, err)
	}
	f.clock.set(time.UnixMilli(oldest.End).Add(72 * time.Hour))
	dropped, err = f.svc.EnforceRetention(t.Context())
	if err != nil || len(dropped) != 1 || dropped[0].Start.UnixMilli() != oldest.Start {
		t.Fatalf("dropped %v at the slice's own expiry, want only %d (err %v)", dropped, oldest.Start, err)
	}
}

// A live reload may change time_partition too; it applies to slices created afterwards.
func TestReconfigureTimePartitionAppliesToNewSlices(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	f.writeSync(ev("dev1", baseTime.Add(-3*time.Hour), "old"))
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.TimePartition = TimePartition{SecondsPerTimeSlice: 600, SecondsPerTimeBucket: 60, EventBuckets: 1}
	cfg.Namespaces["ns"] = ns
	if err := f.svc.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	f.writeSync(ev("dev1", baseTime.Add(-time.Minute), "new"))
	got := ids(f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-4*time.Hour), baseTime)}))
	if !slices.Equal(got, []string{"new", "old"}) {
		t.Fatalf("read %v", got)
	}
	metas, _ := f.engine.Slices(t.Context(), "ns")
	if len(metas) != 2 || metas[0].End-metas[0].Start != 3_600_000 || metas[1].End-metas[1].Start != 600_000 || metas[1].EventBuckets != 1 {
		t.Fatalf("slice table %+v", metas)
	}
}

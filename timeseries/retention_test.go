package timeseries

import (
	"slices"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

func TestRetentionDropsWholeSlices(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	s1 := baseTime.Add(-47 * time.Hour).Truncate(time.Hour)
	s2 := s1.Add(time.Hour)
	f.writeSync(
		ev("dev1", s1, "s1-first", "device", "ios"), ev("dev1", s1.Add(59*time.Minute), "s1-last", "device", "ios"),
		ev("dev1", s2, "s2-first", "device", "ios"), ev("dev1", s2.Add(30*time.Minute), "s2-mid", "device", "ios"),
	)
	iv := interval(s1.Add(-time.Hour), s2.Add(2*time.Hour))
	read := func() []string {
		return ids(f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv}))
	}

	// One millisecond before slice 1's end + deleteAfter (72h) nothing is dropped.
	f.clock.set(s1.Add(time.Hour + 72*time.Hour - time.Millisecond))
	if dropped, err := f.svc.EnforceRetention(t.Context()); err != nil || len(dropped) != 0 {
		t.Fatalf("early retention dropped %v, err %v", dropped, err)
	}
	if left, _ := f.engine.Slices(t.Context(), "ns"); len(left) != 2 {
		t.Fatalf("before expiry: slices %v", left)
	}

	// At that instant slice 1 goes whole, including its last event which is only 72h-59m old.
	f.clock.set(s1.Add(time.Hour + 72*time.Hour))
	dropped, err := f.svc.EnforceRetention(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || !dropped[0].Start.Equal(s1) || dropped[0].Namespace != "ns" {
		t.Fatalf("dropped %v, want slice %s", dropped, s1)
	}
	// Back at a time when slice 2 is still open for reads (close_after fences reads).
	f.clock.set(baseTime)
	if got := read(); !slices.Equal(got, []string{"s2-mid", "s2-first"}) {
		t.Fatalf("after dropping slice 1: %v", got)
	}
	left, err := f.engine.Slices(t.Context(), "ns")
	if err != nil || len(left) != 1 || left[0].Start != s2.UnixMilli() {
		t.Fatalf("slices left %v (err %v), want only %d", left, err, s2.UnixMilli())
	}
	// Search postings went with the slice too.
	found := ids(f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios"))}))
	if !slices.Equal(found, []string{"s2-mid", "s2-first"}) {
		t.Fatalf("search after drop: %v", found)
	}
}

func TestRetentionLoopRunsInBackground(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	at := baseTime.Add(-47 * time.Hour)
	f.writeSync(ev("dev1", at, "old"))
	f.clock.add(100 * time.Hour)
	cfg := testConfig()
	cfg.RetentionInterval = 5 * time.Millisecond
	s, err := New(cfg, f.engine, WithClock(f.clock.now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := f.engine.Slices(t.Context(), "ns")
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention loop did not drop %v", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Issue 15 item 4: a slice past retention.close_after is closed to reads, not only writes.
func TestCloseAfterFencesReadsAndSearches(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	at := baseTime.Add(-47 * time.Hour)
	f.writeSync(ev("dev1", at, "old", "device", "ios"), ev("dev1", baseTime, "new", "device", "ios"))
	iv := interval(at.Add(-time.Hour), baseTime.Add(time.Minute))
	read := func() []string {
		return ids(f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv}))
	}
	search := func() []string {
		return ids(f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios"))}))
	}
	if got := read(); !slices.Equal(got, []string{"new", "old"}) {
		t.Fatalf("before close: %v", got)
	}
	// close_after is 48h past the end of the old event's 1h slice.
	sliceEnd := at.Truncate(time.Hour).Add(time.Hour)
	f.clock.set(sliceEnd.Add(48*time.Hour - time.Millisecond))
	if got := read(); !slices.Equal(got, []string{"new", "old"}) {
		t.Fatalf("1ms before close: %v", got)
	}
	f.clock.set(sliceEnd.Add(48 * time.Hour))
	if got := read(); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("read after close_after: %v, want only the open slice's event", got)
	}
	if got := search(); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("search after close_after: %v", got)
	}
	// Retention records the status in the slice table.
	if _, err := f.svc.EnforceRetention(t.Context()); err != nil {
		t.Fatal(err)
	}
	metas, err := f.engine.Slices(t.Context(), "ns")
	if err != nil || len(metas) != 2 || metas[0].Status != storage.SliceClosed || metas[1].Status != storage.SliceOpen {
		t.Fatalf("slice table after close: %+v %v", metas, err)
	}
}

package timeseries

import (
	"slices"
	"testing"
	"time"
)

func TestRetentionDropsWholeSlices(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	l := newLayout(testNamespace().TimePartition)
	s1 := time.UnixMilli(l.slice(baseTime.Add(-47 * time.Hour).UnixMilli())).UTC()
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
	if got := read(); len(got) != 4 {
		t.Fatalf("before expiry: %v", got)
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
	if got := read(); !slices.Equal(got, []string{"s2-mid", "s2-first"}) {
		t.Fatalf("after dropping slice 1: %v", got)
	}
	left, err := f.engine.Slices(t.Context(), "ns")
	if err != nil || !slices.Equal(left, []int64{s2.UnixMilli()}) {
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

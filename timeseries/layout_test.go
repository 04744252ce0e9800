package timeseries

import (
	"slices"
	"testing"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

func TestBucketsDescVisitsOnlyExistingSlicesNewestFirst(t *testing.T) {
	l := layout{sliceMs: 100, bucketMs: 25, eventBuckets: 3}
	collect := func(r storage.TimeRange, sl []int64) []int64 {
		var out []int64
		l.bucketsDesc(r, sl, func(b int64) bool { out = append(out, b); return true })
		return out
	}
	got := collect(storage.TimeRange{Start: 30, End: 360}, []int64{0, 200, 300, 900})
	want := []int64{350, 325, 300, 275, 250, 225, 200, 75, 50, 25}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := collect(storage.TimeRange{Start: 0, End: 1 << 50}, nil); len(got) != 0 {
		t.Fatalf("no slices: %v", got)
	}
	if got := collect(storage.TimeRange{Start: 10, End: 10}, []int64{0}); len(got) != 0 {
		t.Fatalf("empty range: %v", got)
	}
	var n int
	l.bucketsDesc(storage.TimeRange{Start: 0, End: 400}, []int64{0, 100, 200, 300}, func(int64) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("did not stop when fn returned false: %d calls", n)
	}
}

func TestEventBucketDependsOnlyOnIdempotencyKey(t *testing.T) {
	l := newLayout(TimePartition{SecondsPerTimeSlice: 3600, SecondsPerTimeBucket: 60, EventBuckets: 8})
	seen := map[uint16]bool{}
	for i := 0; i < 200; i++ {
		id := eventID(i)
		a, b := l.partition("s", 123456, id), l.partition("s", 123456, id)
		if a != b {
			t.Fatalf("partition of %s not deterministic", id)
		}
		if a.EventBucket >= 8 {
			t.Fatalf("event bucket %d out of range", a.EventBucket)
		}
		seen[a.EventBucket] = true
	}
	if len(seen) != 8 {
		t.Fatalf("a burst on one series used %d of 8 event buckets", len(seen))
	}
	if p := l.partition("s", 3_600_000+61_000, "x"); p.Slice != 3_600_000 || p.Bucket != 3_660_000 {
		t.Fatalf("slice/bucket of 1h1m1s: %+v", p)
	}
}

package timeseries

import (
	"slices"
	"testing"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

func TestBucketsDescVisitsOnlyExistingSlicesNewestFirst(t *testing.T) {
	meta := func(start, end, bucket int64) storage.SliceMeta {
		return storage.SliceMeta{Start: start, End: end, BucketMs: bucket, EventBuckets: 3, Status: storage.SliceOpen}
	}
	// Slices of different widths and bucket sizes, as after a time_partition change.
	list := []storage.SliceMeta{meta(0, 100, 25), meta(200, 300, 25), meta(300, 340, 20), meta(900, 1000, 50)}
	collect := func(r storage.TimeRange, readableFrom int64) []int64 {
		var out []int64
		bucketsDesc(list, r, readableFrom, func(b timeBucket) bool { out = append(out, b.start); return true })
		return out
	}
	got := collect(storage.TimeRange{Start: 30, End: 360}, 0)
	want := []int64{320, 300, 275, 250, 225, 200, 75, 50, 25}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Slices ending at or before readableFrom are closed to reads.
	if got := collect(storage.TimeRange{Start: 0, End: 400}, 100); !slices.Equal(got, []int64{320, 300, 275, 250, 225, 200}) {
		t.Fatalf("closed slice read: %v", got)
	}
	if got := collect(storage.TimeRange{Start: 10, End: 10}, 0); len(got) != 0 {
		t.Fatalf("empty range: %v", got)
	}
	var n int
	bucketsDesc(list, storage.TimeRange{Start: 0, End: 400}, 0, func(timeBucket) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("did not stop when fn returned false: %d calls", n)
	}
}

func TestNewSliceAbutsNeighboursWithoutOverlap(t *testing.T) {
	day := TimePartition{SecondsPerTimeSlice: 86400, SecondsPerTimeBucket: 3600, EventBuckets: 2}
	hourMs := int64(3_600_000)
	// Existing hour-wide slices [10h,11h) and [14h,15h); a day-wide slice for 12h must fit
	// between them.
	list := []storage.SliceMeta{{Start: 10 * hourMs, End: 11 * hourMs}, {Start: 14 * hourMs, End: 15 * hourMs}}
	m := newSliceBounds(list, 12*hourMs+5, day)
	if m.Start != 11*hourMs || m.End != 14*hourMs || m.BucketMs != hourMs || m.EventBuckets != 2 || m.Status != storage.SliceOpen {
		t.Fatalf("clamped slice %+v", m)
	}
	// Without neighbours it is the aligned day.
	if m := newSliceBounds(nil, 12*hourMs, day); m.Start != 0 || m.End != 24*hourMs {
		t.Fatalf("free slice %+v", m)
	}
}

func TestEventBucketDependsOnlyOnIdempotencyKey(t *testing.T) {
	m := storage.SliceMeta{Start: 0, End: 3_600_000, BucketMs: 60_000, EventBuckets: 8}
	seen := map[uint16]bool{}
	for i := 0; i < 200; i++ {
		id := eventID(i)
		a, b := partitionIn(m, "s", 123456, id), partitionIn(m, "s", 123456, id)
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
	if p := partitionIn(m, "s", 61_000, "x"); p.Slice != 0 || p.Bucket != 60_000 {
		t.Fatalf("slice/bucket of 1m1s: %+v", p)
	}
}

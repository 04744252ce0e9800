package timeseries

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// sliceTable is one namespace's slice metadata table: every slice's bounds and the
// partitioning its data was written with, persisted in the engine (storage.SliceMeta) and
// mirrored here as an immutable sorted snapshot that reads use without locking.
//
// A slice is created (persisted before any of its data) by the first write into a time no
// slice covers, with the namespace's current time_partition, clamped so it abuts and never
// overlaps its neighbours. Changing time_partition therefore only affects slices created
// afterwards; existing data stays where its own slice says it is.
type sliceTable struct {
	ns     string
	engine storage.Engine

	mu       sync.Mutex // serialises creation, status changes and reloads
	snap     atomic.Pointer[[]storage.SliceMeta]
	loadedAt atomic.Int64 // unix nanos of the last reload from the engine
}

// sliceTableTTL is how stale a reader's view of the table may be. Another process sharing a
// distributed engine may create slices; a read notices them within this time.
const sliceTableTTL = time.Second

func newSliceTable(ctx context.Context, ns string, engine storage.Engine) (*sliceTable, error) {
	t := &sliceTable{ns: ns, engine: engine}
	if err := t.reload(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// fresh returns the table, reloading it from the engine first when it is older than
// sliceTableTTL. A failed reload keeps the last snapshot (reads stay available).
func (t *sliceTable) fresh(ctx context.Context) []storage.SliceMeta {
	if time.Since(time.Unix(0, t.loadedAt.Load())) > sliceTableTTL {
		t.mu.Lock()
		if time.Since(time.Unix(0, t.loadedAt.Load())) > sliceTableTTL {
			_ = t.reloadLocked(ctx)
		}
		t.mu.Unlock()
	}
	return t.list()
}

// reload replaces the snapshot with the engine's table.
func (t *sliceTable) reload(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reloadLocked(ctx)
}

func (t *sliceTable) reloadLocked(ctx context.Context) error {
	list, err := t.engine.Slices(ctx, t.ns)
	if err != nil {
		return fmt.Errorf("namespace %s: load slice table: %w", t.ns, err)
	}
	slices.SortFunc(list, func(a, b storage.SliceMeta) int { return cmp.Compare(a.Start, b.Start) })
	for i := 1; i < len(list); i++ {
		if list[i].Start < list[i-1].End {
			return fmt.Errorf("namespace %s: slice table is inconsistent: slice %s overlaps %s", t.ns, formatTime(list[i].Start), formatTime(list[i-1].Start))
		}
	}
	for _, m := range list {
		if m.End <= m.Start || m.BucketMs <= 0 || m.EventBuckets < 1 {
			return fmt.Errorf("namespace %s: slice table row %s is invalid: %+v", t.ns, formatTime(m.Start), m)
		}
	}
	t.snap.Store(&list)
	t.loadedAt.Store(time.Now().UnixNano())
	return nil
}

func (t *sliceTable) list() []storage.SliceMeta { return *t.snap.Load() }

// find returns the slice covering ms.
func findSlice(list []storage.SliceMeta, ms int64) (storage.SliceMeta, bool) {
	i, _ := slices.BinarySearchFunc(list, ms, func(m storage.SliceMeta, t int64) int {
		switch {
		case m.End <= t:
			return -1
		case m.Start > t:
			return 1
		}
		return 0
	})
	if i < len(list) && list[i].Start <= ms && ms < list[i].End {
		return list[i], true
	}
	return storage.SliceMeta{}, false
}

// ensure returns the slice covering ms, creating it with tp if there is none.
func (t *sliceTable) ensure(ctx context.Context, ms int64, tp TimePartition) (storage.SliceMeta, error) {
	if m, ok := findSlice(t.list(), ms); ok {
		return m, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.list()
	if m, ok := findSlice(list, ms); ok {
		return m, nil
	}
	m := newSliceBounds(list, ms, tp)
	if err := t.engine.PutSlice(ctx, t.ns, m); err != nil {
		return m, fmt.Errorf("namespace %s: record slice %s: %w", t.ns, formatTime(m.Start), err)
	}
	next := slices.Clone(list)
	i, _ := slices.BinarySearchFunc(next, m.Start, func(x storage.SliceMeta, s int64) int { return cmp.Compare(x.Start, s) })
	next = slices.Insert(next, i, m)
	t.snap.Store(&next)
	return m, nil
}

// newSliceBounds places a slice for ms using tp, clamped between the existing neighbours so
// slices never overlap and adjacent ones abut.
func newSliceBounds(list []storage.SliceMeta, ms int64, tp TimePartition) storage.SliceMeta {
	width := tp.SecondsPerTimeSlice * 1000
	start := floorTo(ms, width)
	end := start + width
	for _, m := range list {
		if m.End <= ms && m.End > start {
			start = m.End
		}
		if m.Start > ms && m.Start < end {
			end = m.Start
		}
	}
	return storage.SliceMeta{Start: start, End: end, BucketMs: tp.SecondsPerTimeBucket * 1000, EventBuckets: tp.EventBuckets, Status: storage.SliceOpen}
}

// setStatus persists a slice's new status.
func (t *sliceTable) setStatus(ctx context.Context, start int64, st storage.SliceStatus) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := slices.Clone(t.list())
	for i := range list {
		if list[i].Start == start {
			m := list[i]
			m.Status = st
			if err := t.engine.PutSlice(ctx, t.ns, m); err != nil {
				return err
			}
			list[i] = m
			t.snap.Store(&list)
			return nil
		}
	}
	return nil
}

// drop removes a slice's data and its row.
func (t *sliceTable) drop(ctx context.Context, start int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.engine.DropSlice(ctx, t.ns, start); err != nil {
		return err
	}
	list := slices.DeleteFunc(slices.Clone(t.list()), func(m storage.SliceMeta) bool { return m.Start == start })
	t.snap.Store(&list)
	return nil
}

func floorTo(t, unit int64) int64 {
	if t >= 0 {
		return t - t%unit
	}
	return -((-t + unit - 1) / unit) * unit
}

// bucketOf returns the start of the time bucket of ms inside slice m.
func bucketOf(m storage.SliceMeta, ms int64) int64 {
	return m.Start + floorTo(ms-m.Start, m.BucketMs)
}

// eventBucket depends only on the idempotency key (time, id), so a retried or hedged write
// lands in the same partition as the original and overwrites it. It is FNV-1a over the
// little-endian time and the id, computed inline so the write path does not allocate.
func eventBucket(t int64, id string, buckets int) uint16 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < 8; i++ {
		h ^= uint32(byte(t >> (8 * i)))
		h *= prime
	}
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= prime
	}
	return uint16(h % uint32(buckets))
}

func partitionIn(m storage.SliceMeta, tsid string, t int64, id string) storage.Partition {
	return storage.Partition{Slice: m.Start, TimeSeriesID: tsid, Bucket: bucketOf(m, t), EventBucket: eventBucket(t, id, m.EventBuckets)}
}

// timeBucket is one time bucket of one slice: where to find its partitions and postings.
type timeBucket struct {
	slice        int64
	start, end   int64 // [start, end), cut short by the slice end
	eventBuckets int
}

// clip intersects r with the bucket.
func (b timeBucket) clip(r storage.TimeRange) storage.TimeRange {
	return storage.TimeRange{Start: max(r.Start, b.start), End: min(r.End, b.end)}
}

func (b timeBucket) contains(ms int64) bool { return ms >= b.start && ms < b.end }

// bucketsDesc calls fn with each time bucket overlapping r, newest first, over the slices of
// list that are readable at now (not past close_after), so a wide interval over sparse data
// costs one step per existing slice. It stops when fn returns false.
func bucketsDesc(list []storage.SliceMeta, r storage.TimeRange, readableFrom int64, fn func(timeBucket) bool) {
	if r.End <= r.Start {
		return
	}
	for i := len(list) - 1; i >= 0; i-- {
		m := list[i]
		if m.Start >= r.End {
			continue
		}
		if m.End <= r.Start {
			return
		}
		if m.End <= readableFrom {
			return // closed for reads, and so is every older slice
		}
		lo, hi := max(r.Start, m.Start), min(r.End, m.End)
		for b := bucketOf(m, hi-1); b+m.BucketMs > lo; b -= m.BucketMs {
			if !fn(timeBucket{slice: m.Start, start: b, end: min(b+m.BucketMs, m.End), eventBuckets: m.EventBuckets}) {
				return
			}
		}
	}
}

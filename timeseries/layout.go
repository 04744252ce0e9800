package timeseries

import (
	"hash/fnv"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// layout maps event times to slices, time buckets and event buckets for one namespace.
type layout struct {
	sliceMs      int64
	bucketMs     int64
	eventBuckets int
}

func newLayout(tp TimePartition) layout {
	return layout{sliceMs: tp.SecondsPerTimeSlice * 1000, bucketMs: tp.SecondsPerTimeBucket * 1000, eventBuckets: tp.EventBuckets}
}

func floorTo(t, unit int64) int64 {
	if t >= 0 {
		return t - t%unit
	}
	return -((-t + unit - 1) / unit) * unit
}

func (l layout) slice(t int64) int64  { return floorTo(t, l.sliceMs) }
func (l layout) bucket(t int64) int64 { return floorTo(t, l.bucketMs) }

// eventBucket depends only on the idempotency key (time, id), so a retried or hedged write
// lands in the same partition as the original and overwrites it.
func (l layout) eventBucket(t int64, id string) uint16 {
	h := fnv.New32a()
	var b [8]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(t >> (8 * i))
	}
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(id))
	return uint16(h.Sum32() % uint32(l.eventBuckets))
}

func (l layout) partition(tsid string, t int64, id string) storage.Partition {
	return storage.Partition{Slice: l.slice(t), TimeSeriesID: tsid, Bucket: l.bucket(t), EventBucket: l.eventBucket(t, id)}
}

// bucketsDesc calls fn with each time bucket overlapping [start, end), newest first, visiting
// only the slices that hold data (slices ascending, as storage.Engine.Slices returns them), so
// a wide interval over sparse data costs one step per existing slice. It stops when fn
// returns false.
func (l layout) bucketsDesc(r storage.TimeRange, sliceList []int64, fn func(bucket int64) bool) {
	if r.End <= r.Start {
		return
	}
	first, last := l.bucket(r.Start), l.bucket(r.End-1)
	for i := len(sliceList) - 1; i >= 0; i-- {
		s := sliceList[i]
		if s > last {
			continue
		}
		if s+l.sliceMs <= first {
			return
		}
		for b := min(last, s+l.sliceMs-l.bucketMs); b >= max(first, s); b -= l.bucketMs {
			if !fn(b) {
				return
			}
		}
	}
}

// clip intersects r with the bucket starting at b.
func (l layout) clip(r storage.TimeRange, b int64) storage.TimeRange {
	out := storage.TimeRange{Start: max(r.Start, b), End: min(r.End, b+l.bucketMs)}
	return out
}

// Package storage owns the contract between the TimeSeries API layer and the engines that
// persist events: the logical data layout (time slices, time buckets, event buckets, index
// partitions), the rows an engine stores, and the Engine interface itself.
//
// The layout follows a wide-column design so that a distributed engine (Cassandra-like: one
// table per time slice, partition key (timeSeriesId, timeBucket, eventBucket), clustering by
// event time descending) can implement Engine without the API layer changing. The embedded
// engine lives in package pebbleengine.
package storage

import (
	"context"
	"errors"
	"strings"
)

// Item is one key/value pair of an event. Keys are unique within an event.
type Item struct {
	Key   []byte
	Value []byte
}

// Event is one immutable event. Time is Unix milliseconds (>= 0). The idempotency key of a
// stored row is (Time, ID, Item.Key) inside the event's partition, so re-writing the same event
// overwrites the same rows rather than adding new ones.
type Event struct {
	TimeSeriesID string
	Time         int64
	ID           string
	Items        []Item
}

// Partition addresses the rows of one time series in one time bucket and one event bucket.
// Slice and Bucket are the start times (Unix ms) of the time slice and time bucket containing
// the events; EventBucket spreads a burst on a single series across partitions.
type Partition struct {
	Slice        int64
	TimeSeriesID string
	Bucket       int64
	EventBucket  uint16
}

// IndexKind is the type of an indexed field; it decides how values are encoded and queried.
type IndexKind uint8

// Index kinds.
const (
	KindKeyword IndexKind = iota + 1
	KindInteger
	KindBoolean
)

// IndexEntry is one posting written for an event: field = value, found in the event's time
// bucket. Keyword and boolean values use Value (booleans normalised to "true"/"false");
// integers use Int. Raw is the item's value exactly as written (distinct aggregation counts
// raw values); engines store it in the event's index row (ScanIndexRows), not in postings.
type IndexEntry struct {
	Field string
	Kind  IndexKind
	Value []byte
	Int   int64
	Raw   []byte
}

// Write is one event with its partition and the index postings written alongside it.
type Write struct {
	Partition Partition
	Event     Event
	Index     []IndexEntry
}

// Batch is a set of writes to one namespace that an engine applies atomically: all rows and
// all index postings become visible together or not at all.
type Batch struct {
	Namespace string
	Writes    []Write
}

// Ref identifies an event from an index posting. Refs are ordered newest first: Time
// descending, then TimeSeriesID, then ID ascending (see CompareRefs).
type Ref struct {
	Time         int64
	TimeSeriesID string
	ID           string
}

// CompareRefs orders refs in index order (newest first). It returns -1 if a comes first.
func CompareRefs(a, b Ref) int {
	switch {
	case a.Time > b.Time:
		return -1
	case a.Time < b.Time:
		return 1
	}
	if c := compareStrings(a.TimeSeriesID, b.TimeSeriesID); c != 0 {
		return c
	}
	return compareStrings(a.ID, b.ID)
}

// Cursor is a position inside a partition: the scan resumes strictly after (Time, ID) in
// partition order (Time descending, ID ascending).
type Cursor struct {
	Time int64
	ID   string
}

// After reports whether an event at (t, id) comes strictly after c in partition order.
func (c Cursor) After(t int64, id string) bool {
	if t != c.Time {
		return t < c.Time
	}
	return compareStrings(id, c.ID) > 0
}

// TimeRange is the half-open interval [Start, End) in Unix milliseconds.
type TimeRange struct {
	Start int64
	End   int64
}

// Contains reports whether t is inside the range.
func (r TimeRange) Contains(t int64) bool { return t >= r.Start && t < r.End }

// IndexPartition addresses the postings of one field in one time bucket.
type IndexPartition struct {
	Slice  int64
	Bucket int64
	Field  string
	Kind   IndexKind
}

// IndexMatch selects postings: Equals for keyword/boolean (and integer equality as a range of
// one value), or the inclusive integer range [Min, Max] for integer fields.
type IndexMatch struct {
	Equals []byte
	Min    int64
	Max    int64
}

// SliceStatus is the life-cycle state of a time slice.
type SliceStatus uint8

// Slice states. A slice is Open while it may take writes and be read, Closed once
// retention.close_after has passed since its end (neither written nor read), and is then
// dropped whole (DropSlice) once retention.delete_after has passed.
const (
	SliceOpen SliceStatus = iota + 1
	SliceClosed
)

// SliceMeta is one row of a namespace's slice metadata table: the slice's bounds and the
// partitioning its data is laid out with. Slices of one namespace never overlap; a slice
// created next to an existing one abuts it exactly, so changing the namespace's partitioning
// applies to slices created afterwards and leaves the existing ones readable as written.
type SliceMeta struct {
	// Start and End bound the slice, [Start, End) in Unix ms. Start is the slice id used in
	// Partition.Slice and IndexPartition.Slice.
	Start, End int64
	// BucketMs is the time-bucket width; buckets start at Start + k*BucketMs (the last one
	// may be cut short by End).
	BucketMs int64
	// EventBuckets is the number of event buckets per (series, time bucket).
	EventBuckets int
	Status       SliceStatus
}

// ErrNotSupported is returned by an optional engine capability the engine lacks.
var ErrNotSupported = errors.New("storage: not supported by this engine")

// Durability selects how a batch is committed.
type Durability uint8

// Durability levels.
const (
	// Durable returns only once the batch is on stable storage (fsync).
	Durable Durability = iota
	// Buffered may return before the batch is on stable storage; a crash can lose it.
	Buffered
)

// Engine persists events. Implementations must be safe for concurrent use, must stop scans
// promptly when ctx is done (returning ctx.Err()), and must call fn only from the calling
// goroutine. Slices must be passed as computed by the caller from the slice metadata table;
// the engine does not interpret partitioning.
//
// Writes merge per item: writing an event that already exists adds its new items and
// overwrites items with the same key (last write wins); items it does not mention are kept.
// Within one Batch the same event appears at most once (callers merge first).
type Engine interface {
	// Apply writes a batch atomically. With Durable it returns after the data, and every
	// batch applied before it, is fsynced; an empty Durable batch is a sync barrier.
	Apply(ctx context.Context, b *Batch, d Durability) error
	// ScanPartition calls fn for each event of p whose time is in r, in partition order (time
	// descending, id ascending), starting strictly after cursor when it is non-nil. Scanning
	// stops when fn returns false.
	ScanPartition(ctx context.Context, ns string, p Partition, r TimeRange, after *Cursor, fn func(Event) bool) error
	// ScanIndex calls fn with each ref posted in ip that matches m, whose time is in r, in ref
	// order (CompareRefs), starting strictly after `after` when it is non-nil.
	ScanIndex(ctx context.Context, ns string, ip IndexPartition, m IndexMatch, r TimeRange, after *Ref, fn func(Ref) bool) error
	// GetEvent loads one event by partition, time and id; ok is false if it does not exist.
	GetEvent(ctx context.Context, ns string, p Partition, t int64, id string) (ev Event, ok bool, err error)
	// ScanIndexRows calls fn, in ref order, with each event of one time bucket whose time is
	// in r and that was written with at least one IndexEntry, together with the event's
	// current indexed values: one entry per field, merged across writes of the event the same
	// way items are (the last write of a field wins). It lets aggregations evaluate a query and
	// count values without loading events. entries is only valid during the call. An engine
	// without index rows returns ErrNotSupported; the caller then loads events instead.
	ScanIndexRows(ctx context.Context, ns string, slice, bucket int64, r TimeRange, fn func(ref Ref, entries []IndexEntry) bool) error
	// Slices lists the slice metadata table of ns, ascending by Start.
	Slices(ctx context.Context, ns string) ([]SliceMeta, error)
	// PutSlice durably records a slice's metadata (insert, or update of an existing Start's
	// Status). The caller records a slice before writing any of its data.
	PutSlice(ctx context.Context, ns string, m SliceMeta) error
	// DropSlice removes every row, posting and index row of one slice of ns as a whole, then
	// its metadata row.
	DropSlice(ctx context.Context, ns string, slice int64) error
	// Close releases the engine; pending buffered writes are made durable first.
	Close() error
}

func compareStrings(a, b string) int {
	return strings.Compare(a, b)
}

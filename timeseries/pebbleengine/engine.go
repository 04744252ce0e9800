// Package pebbleengine is the embedded TimeSeries engine: it implements storage.Engine on a
// single cockroachdb/pebble LSM.
//
// One pebble instance holds every namespace and slice. A slice is one contiguous key range,
// so dropping it is one range tombstone (DeleteRange) followed by a compaction of that range,
// which pebble turns into whole-file deletions. We chose this over one pebble directory per
// slice because a batch that spans slices must still commit atomically with one WAL fsync
// (sync-write latency and "nothing of a batch half-written"), and because many open pebble
// instances would multiply memtables, WALs and background goroutines.
package pebbleengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Options tune the embedded engine. Zero values pick defaults.
type Options struct {
	// CacheBytes is the block cache size. Default 64 MiB.
	CacheBytes int64
	// MemTableBytes is the memtable size. Default 32 MiB.
	MemTableBytes uint64
	// Logf receives pebble's error messages; informational messages are dropped. Nil
	// discards everything.
	Logf func(format string, args ...any)
}

// Engine is the pebble-backed storage.Engine.
type Engine struct {
	db *pebble.DB
	// onCommit, if set (benchmarks only), receives pebble's timing breakdown of each commit.
	onCommit func(pebble.BatchCommitStats)

	mu     sync.RWMutex // guards closed against use-after-close of db
	closed bool
}

var _ storage.Engine = (*Engine)(nil)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("pebbleengine: engine is closed")

// Open opens (or creates) the store in dir.
func Open(dir string, o Options) (*Engine, error) {
	if dir == "" {
		return nil, errors.New("pebbleengine: data dir is empty")
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 32 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:              cache,
		MemTableSize:       o.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             quietLogger{logf: o.Logf},
		Merger:             keyedListMergeOperator,
	})
	if err != nil {
		return nil, fmt.Errorf("pebbleengine: open %s: %w", dir, err)
	}
	return &Engine{db: db}, nil
}

// acquire guards db against concurrent Close; the caller must call release.
func (e *Engine) acquire() error {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (e *Engine) release() { e.mu.RUnlock() }

// Close syncs the WAL and closes pebble. It waits for in-flight calls to return.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	syncErr := e.db.LogData(nil, pebble.Sync)
	return errors.Join(syncErr, e.db.Close())
}

// Apply writes all rows and postings of b in one pebble batch. Event and index rows are
// merged (per item, per field), so a re-written event keeps the items it does not repeat.
func (e *Engine) Apply(ctx context.Context, b *storage.Batch, d storage.Durability) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.acquire(); err != nil {
		return err
	}
	defer e.release()
	if len(b.Writes) == 0 {
		if d == storage.Durable {
			return e.db.LogData(nil, pebble.Sync)
		}
		return nil
	}
	rows := rowsPool.Get().(*batchRows)
	defer rowsPool.Put(rows)
	rows.build(b)
	pb := e.db.NewBatch()
	defer pb.Close()
	for _, r := range rows.sorted() {
		var err error
		if r.merge {
			err = pb.Merge(rows.key(r), rows.value(r), nil)
		} else {
			err = pb.Set(rows.key(r), rows.value(r), nil)
		}
		if err != nil {
			return err
		}
	}
	opts := pebble.Sync
	if d == storage.Buffered {
		opts = pebble.NoSync
	}
	err := pb.Commit(opts)
	if e.onCommit != nil && err == nil {
		e.onCommit(pb.CommitStats())
	}
	return err
}

func eventKey(dst []byte, ns string, p storage.Partition, t int64, id string) []byte {
	dst = appendPartitionPrefix(dst, ns, p.Slice, p.TimeSeriesID, p.Bucket, p.EventBucket)
	dst = appendU64(dst, inv(t))
	return appendEscaped(dst, id)
}

func indexRowKey(dst []byte, ns string, slice, bucket int64, ev storage.Event) []byte {
	dst = appendIndexRowPrefix(dst, ns, slice, bucket)
	dst = appendU64(dst, inv(ev.Time))
	dst = appendEscaped(dst, ev.TimeSeriesID)
	return appendEscaped(dst, ev.ID)
}

func postingKey(dst []byte, ns string, slice, bucket int64, ix storage.IndexEntry, ev storage.Event) []byte {
	dst = appendSlicePrefix(dst, ns, slice)
	dst = append(dst, tagKeyword)
	dst = appendEscaped(dst, ix.Field)
	dst = appendU64(dst, uint64(bucket))
	dst = appendEscapedBytes(dst, ix.Value)
	dst = appendU64(dst, inv(ev.Time))
	dst = appendEscaped(dst, ev.TimeSeriesID)
	return appendEscaped(dst, ev.ID)
}

// ctxCheckEvery bounds how many rows a scan reads between context checks.
const ctxCheckEvery = 64

// ScanPartition implements storage.Engine.
func (e *Engine) ScanPartition(ctx context.Context, ns string, p storage.Partition, r storage.TimeRange, after *storage.Cursor, fn func(storage.Event) bool) error {
	if r.End <= r.Start {
		return nil
	}
	if err := e.acquire(); err != nil {
		return err
	}
	defer e.release()
	prefix := partitionPrefix(ns, p.Slice, p.TimeSeriesID, p.Bucket, p.EventBucket)
	lower := appendU64(append([]byte(nil), prefix...), inv(r.End-1))
	upper := appendU64(append([]byte(nil), prefix...), inv(r.Start-1))
	if after != nil {
		c := appendEscaped(appendU64(append([]byte(nil), prefix...), inv(after.Time)), after.ID)
		c = append(c, 0) // strictly after the cursor's own row
		if string(c) > string(lower) {
			lower = c
		}
	}
	var arena byteArena
	return e.scan(ctx, lower, upper, func(it *pebble.Iterator) (bool, error) {
		rest := it.Key()[len(prefix):]
		if len(rest) < 8 {
			return false, errCorruptKey
		}
		id, _, err := readEscaped(rest[8:])
		if err != nil {
			return false, err
		}
		ev := storage.Event{TimeSeriesID: p.TimeSeriesID, Time: uninv(binary.BigEndian.Uint64(rest)), ID: string(id)}
		if ev.Items, err = decodeItems(it.Value(), &arena); err != nil {
			return false, err
		}
		return fn(ev), nil
	})
}

func decodeItems(v []byte, arena *byteArena) ([]storage.Item, error) {
	items := make([]storage.Item, 0, 4)
	err := forEachPair(v, func(k, val []byte) {
		items = append(items, storage.Item{Key: arena.copy(k), Value: arena.copy(val)})
	})
	return items, err
}

// GetEvent implements storage.Engine with one point read.
func (e *Engine) GetEvent(ctx context.Context, ns string, p storage.Partition, t int64, id string) (storage.Event, bool, error) {
	if err := ctx.Err(); err != nil {
		return storage.Event{}, false, err
	}
	if err := e.acquire(); err != nil {
		return storage.Event{}, false, err
	}
	defer e.release()
	v, closer, err := e.db.Get(eventKey(make([]byte, 0, 64+len(ns)+len(p.TimeSeriesID)+len(id)), ns, p, t, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return storage.Event{}, false, nil
	}
	if err != nil {
		return storage.Event{}, false, err
	}
	defer closer.Close()
	var arena byteArena
	items, err := decodeItems(v, &arena)
	if err != nil {
		return storage.Event{}, false, err
	}
	return storage.Event{TimeSeriesID: p.TimeSeriesID, Time: t, ID: id, Items: items}, true, nil
}

// ScanIndex implements storage.Engine: keyword and boolean equality seek their postings;
// integer ranges scan the bucket's index rows.
func (e *Engine) ScanIndex(ctx context.Context, ns string, ip storage.IndexPartition, m storage.IndexMatch, r storage.TimeRange, after *storage.Ref, fn func(storage.Ref) bool) error {
	if r.End <= r.Start {
		return nil
	}
	if ip.Kind == storage.KindInteger {
		return e.scanIndexRows(ctx, ns, ip.Slice, ip.Bucket, r, after, func(ref storage.Ref, v []byte) (bool, error) {
			var (
				x     int64
				found bool
				derr  error
			)
			err := forEachPair(v, func(k, ev []byte) {
				if found || string(k) != ip.Field {
					return
				}
				var entry storage.IndexEntry
				entry, derr = decodeIndexEntry(k, ev)
				x, found = entry.Int, derr == nil && entry.Kind == storage.KindInteger
			})
			if err != nil || derr != nil {
				return false, errors.Join(err, derr)
			}
			if !found || x < m.Min || x > m.Max {
				return true, nil
			}
			return fn(ref), nil
		})
	}
	prefix := slicePrefix(ns, ip.Slice)
	prefix = append(prefix, tagKeyword)
	prefix = appendEscaped(prefix, ip.Field)
	prefix = appendU64(prefix, uint64(ip.Bucket))
	prefix = appendEscapedBytes(prefix, m.Equals)
	return e.scanRefs(ctx, prefix, r, after, func(ref storage.Ref, _ []byte) (bool, error) { return fn(ref), nil })
}

// refBounds are the scan bounds of keys prefix | inv(time) | esc(tsid) | esc(id) for times in
// r, starting strictly after `after` when it is non-nil.
func refBounds(prefix []byte, r storage.TimeRange, after *storage.Ref) (lower, upper []byte) {
	lower = appendU64(append([]byte(nil), prefix...), inv(r.End-1))
	upper = appendU64(append([]byte(nil), prefix...), inv(r.Start-1))
	if after != nil {
		c := appendU64(append([]byte(nil), prefix...), inv(after.Time))
		c = appendEscaped(c, after.TimeSeriesID)
		c = appendEscaped(c, after.ID)
		c = append(c, 0) // strictly after the cursor's own key
		if string(c) > string(lower) {
			lower = c
		}
	}
	return lower, upper
}

// seriesNames interns the series ids of one index scan: a bucket's postings name a few
// series many times over, and a string per posting was most of a search's allocations.
type seriesNames map[string]string

// maxInternedSeries bounds the table; past it names are allocated as they come.
const maxInternedSeries = 4096

func (names *seriesNames) name(b []byte) string {
	if s, ok := (*names)[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if *names == nil {
		*names = make(seriesNames)
	}
	if len(*names) < maxInternedSeries {
		(*names)[s] = s
	}
	return s
}

func (names *seriesNames) parseRef(rest []byte) (storage.Ref, error) {
	t, tsid, id, err := parseTimeAndNames(rest)
	if err != nil {
		return storage.Ref{}, err
	}
	return storage.Ref{Time: t, TimeSeriesID: names.name(tsid), ID: string(id)}, nil
}

// scanIndexRows visits the index rows of one bucket in ref order with their raw values.
func (e *Engine) scanIndexRows(ctx context.Context, ns string, slice, bucket int64, r storage.TimeRange, after *storage.Ref, visit func(storage.Ref, []byte) (bool, error)) error {
	return e.scanRefs(ctx, indexRowPrefix(ns, slice, bucket), r, after, visit)
}

// scanRefs visits the rows under prefix whose keys end in a ref (postings,
// index rows), in ref order, with their raw values.
func (e *Engine) scanRefs(ctx context.Context, prefix []byte, r storage.TimeRange, after *storage.Ref, visit func(storage.Ref, []byte) (bool, error)) error {
	if err := e.acquire(); err != nil {
		return err
	}
	defer e.release()
	lower, upper := refBounds(prefix, r, after)
	var series seriesNames
	return e.scan(ctx, lower, upper, func(it *pebble.Iterator) (bool, error) {
		ref, err := series.parseRef(it.Key()[len(prefix):])
		if err != nil {
			return false, err
		}
		return visit(ref, it.Value())
	})
}

// ScanIndexRows implements storage.Engine.
func (e *Engine) ScanIndexRows(ctx context.Context, ns string, slice, bucket int64, r storage.TimeRange, fn func(storage.Ref, []storage.IndexEntry) bool) error {
	if r.End <= r.Start {
		return nil
	}
	fields := map[string]string{} // interned field names: one allocation per field, not per row
	var entries []storage.IndexEntry
	return e.scanIndexRows(ctx, ns, slice, bucket, r, nil, func(ref storage.Ref, v []byte) (bool, error) {
		entries = entries[:0]
		var derr error
		err := forEachPair(v, func(k, ev []byte) {
			entry, err := decodeIndexEntry(nil, ev)
			if err != nil {
				derr = err
				return
			}
			name, ok := fields[string(k)]
			if !ok {
				name = string(k)
				fields[name] = name
			}
			entry.Field = name
			entries = append(entries, entry)
		})
		if err != nil || derr != nil {
			return false, errors.Join(err, derr)
		}
		return fn(ref, entries), nil
	})
}

// scan visits the keys in [lower, upper) in order, checking ctx every
// ctxCheckEvery keys, until visit returns false or an error.
func (e *Engine) scan(ctx context.Context, lower, upper []byte, visit func(it *pebble.Iterator) (bool, error)) error {
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		more, err := visit(it)
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return ctx.Err()
}

// parseTimeAndNames decodes the key suffix both partition rows and index
// postings share: the inverted time, then two escaped names (event id and
// item key, or series id and event id).
func parseTimeAndNames(rest []byte) (t int64, first, second []byte, err error) {
	if len(rest) < 8 {
		return 0, nil, nil, errCorruptKey
	}
	t = uninv(binary.BigEndian.Uint64(rest))
	first, rest, err = readEscaped(rest[8:])
	if err != nil {
		return 0, nil, nil, err
	}
	second, _, err = readEscaped(rest)
	return t, first, second, err
}

// Slices implements storage.Engine from the slice metadata rows.
func (e *Engine) Slices(ctx context.Context, ns string) ([]storage.SliceMeta, error) {
	if err := e.acquire(); err != nil {
		return nil, err
	}
	defer e.release()
	prefix := appendEscaped(append([]byte(nil), metaPrefix...), ns)
	var out []storage.SliceMeta
	err := e.scan(ctx, prefix, prefixEnd(prefix), func(it *pebble.Iterator) (bool, error) {
		k, v := it.Key()[len(prefix):], it.Value()
		if len(k) != 8 || len(v) != 21 {
			return false, errCorruptKey
		}
		out = append(out, storage.SliceMeta{
			Start:        int64(binary.BigEndian.Uint64(k)),
			End:          int64(binary.BigEndian.Uint64(v)),
			BucketMs:     int64(binary.BigEndian.Uint64(v[8:])),
			EventBuckets: int(binary.BigEndian.Uint32(v[16:])),
			Status:       storage.SliceStatus(v[20]),
		})
		return true, nil
	})
	return out, err
}

// PutSlice implements storage.Engine with one fsynced write.
func (e *Engine) PutSlice(ctx context.Context, ns string, m storage.SliceMeta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.acquire(); err != nil {
		return err
	}
	defer e.release()
	v := appendU64(nil, uint64(m.End))
	v = appendU64(v, uint64(m.BucketMs))
	v = binary.BigEndian.AppendUint32(v, uint32(m.EventBuckets))
	v = append(v, byte(m.Status))
	return e.db.Set(sliceMetaKey(ns, m.Start), v, pebble.Sync)
}

// DropSlice implements storage.Engine with a durable range tombstone, then the metadata row,
// then compacts the range so the disk space is returned rather than waiting for background
// compactions. A crash between the two leaves an empty slice listed, which the next run
// drops again.
func (e *Engine) DropSlice(ctx context.Context, ns string, slice int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.acquire(); err != nil {
		return err
	}
	defer e.release()
	start := slicePrefix(ns, slice)
	end := prefixEnd(start)
	if err := e.db.DeleteRange(start, end, pebble.Sync); err != nil {
		return err
	}
	if err := e.db.Delete(sliceMetaKey(ns, slice), pebble.Sync); err != nil {
		return err
	}
	return e.db.Compact(start, end, false)
}

// byteArena copies many small keys and values into shared chunks: one allocation per few KiB
// instead of two per item. Chunks are never reused, so handed-out slices stay valid.
type byteArena struct{ buf []byte }

func (a *byteArena) copy(b []byte) []byte {
	if len(b) > cap(a.buf)-len(a.buf) {
		a.buf = make([]byte, 0, max(4096, len(b)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// quietLogger drops pebble's informational chatter but keeps errors visible.
type quietLogger struct{ logf func(string, ...any) }

func (l quietLogger) Infof(string, ...any) {}

func (l quietLogger) Errorf(format string, args ...any) {
	if l.logf != nil {
		l.logf("pebble: "+format, args...)
	}
}

func (l quietLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf on unrecoverable corruption and expects the process to stop;
	// carrying on could acknowledge writes that are not durable.
	panic(fmt.Sprintf("pebble: "+format, args...))
}

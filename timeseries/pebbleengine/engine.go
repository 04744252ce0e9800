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

// Apply writes all rows and postings of b in one pebble batch.
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
	pb := e.db.NewBatch()
	defer pb.Close()
	var key []byte
	for i := range b.Writes {
		w := &b.Writes[i]
		p := w.Partition
		base := partitionPrefix(b.Namespace, p.Slice, p.TimeSeriesID, p.Bucket, p.EventBucket)
		base = appendU64(base, inv(w.Event.Time))
		base = appendEscaped(base, w.Event.ID)
		key = appendEscaped(append(key[:0], base...), "")
		if err := pb.Set(key, nil, nil); err != nil {
			return err
		}
		for _, it := range w.Event.Items {
			key = appendEscapedBytes(append(key[:0], base...), it.Key)
			if err := pb.Set(key, it.Value, nil); err != nil {
				return err
			}
		}
		for _, ix := range w.Index {
			key, val := postingKey(key[:0], b.Namespace, p.Slice, p.Bucket, ix, w.Event)
			if err := pb.Set(key, val, nil); err != nil {
				return err
			}
		}
	}
	opts := pebble.Sync
	if d == storage.Buffered {
		opts = pebble.NoSync
	}
	return pb.Commit(opts)
}

func postingKey(dst []byte, ns string, slice, bucket int64, ix storage.IndexEntry, ev storage.Event) (key, val []byte) {
	dst = append(dst, slicePrefix(ns, slice)...)
	switch ix.Kind {
	case storage.KindInteger:
		dst = append(dst, tagInteger)
		dst = appendEscaped(dst, ix.Field)
		dst = appendU64(dst, uint64(bucket))
		val = appendU64(nil, sortableInt(ix.Int))
	default:
		dst = append(dst, tagKeyword)
		dst = appendEscaped(dst, ix.Field)
		dst = appendU64(dst, uint64(bucket))
		dst = appendEscapedBytes(dst, ix.Value)
	}
	dst = appendU64(dst, inv(ev.Time))
	dst = appendEscaped(dst, ev.TimeSeriesID)
	dst = appendEscaped(dst, ev.ID)
	return dst, val
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
		c = prefixEnd(c) // skip every item row of the cursor's event
		if string(c) > string(lower) {
			lower = c
		}
	}
	var cur storage.Event
	var arena byteArena
	have, stopped := false, false
	err := e.scan(ctx, lower, upper, func(it *pebble.Iterator) (bool, error) {
		t, id, itemKey, err := parseTimeAndNames(it.Key()[len(prefix):])
		if err != nil {
			return false, err
		}
		if !have || cur.Time != t || cur.ID != string(id) {
			if have && !fn(cur) {
				stopped = true
				return false, nil
			}
			cur = storage.Event{TimeSeriesID: p.TimeSeriesID, Time: t, ID: string(id), Items: make([]storage.Item, 0, 4)}
			have = true
		}
		if len(itemKey) > 0 {
			cur.Items = append(cur.Items, storage.Item{Key: arena.copy(itemKey), Value: arena.copy(it.Value())})
		}
		return true, nil
	})
	if err != nil || stopped {
		return err
	}
	if have {
		fn(cur)
	}
	return nil
}

// GetEvent implements storage.Engine.
func (e *Engine) GetEvent(ctx context.Context, ns string, p storage.Partition, t int64, id string) (storage.Event, bool, error) {
	var out storage.Event
	found := false
	// A one-millisecond range positioned just before (t, id) yields exactly that event first.
	var after *storage.Cursor
	err := e.ScanPartition(ctx, ns, p, storage.TimeRange{Start: t, End: t + 1}, after, func(ev storage.Event) bool {
		if ev.ID < id {
			return true
		}
		if ev.ID == id {
			out, found = ev, true
		}
		return false
	})
	return out, found, err
}

// ScanIndex implements storage.Engine.
func (e *Engine) ScanIndex(ctx context.Context, ns string, ip storage.IndexPartition, m storage.IndexMatch, r storage.TimeRange, after *storage.Ref, fn func(storage.Ref) bool) error {
	if r.End <= r.Start {
		return nil
	}
	if err := e.acquire(); err != nil {
		return err
	}
	defer e.release()
	prefix := slicePrefix(ns, ip.Slice)
	integer := ip.Kind == storage.KindInteger
	if integer {
		prefix = append(prefix, tagInteger)
	} else {
		prefix = append(prefix, tagKeyword)
	}
	prefix = appendEscaped(prefix, ip.Field)
	prefix = appendU64(prefix, uint64(ip.Bucket))
	if !integer {
		prefix = appendEscapedBytes(prefix, m.Equals)
	}
	lower := appendU64(append([]byte(nil), prefix...), inv(r.End-1))
	upper := appendU64(append([]byte(nil), prefix...), inv(r.Start-1))
	if after != nil {
		c := appendU64(append([]byte(nil), prefix...), inv(after.Time))
		c = appendEscaped(c, after.TimeSeriesID)
		c = appendEscaped(c, after.ID)
		c = append(c, 0) // strictly after the cursor's own posting
		if string(c) > string(lower) {
			lower = c
		}
	}
	return e.scan(ctx, lower, upper, func(it *pebble.Iterator) (bool, error) {
		t, tsid, id, err := parseTimeAndNames(it.Key()[len(prefix):])
		if err != nil {
			return false, err
		}
		if integer {
			v := it.Value()
			if len(v) != 8 {
				return false, errCorruptKey
			}
			if x := unsortableInt(binary.BigEndian.Uint64(v)); x < m.Min || x > m.Max {
				return true, nil
			}
		}
		return fn(storage.Ref{Time: t, TimeSeriesID: string(tsid), ID: string(id)}), nil
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

// Slices implements storage.Engine by skipping from one slice prefix to the next, so it
// touches one key per slice.
func (e *Engine) Slices(ctx context.Context, ns string) ([]int64, error) {
	if err := e.acquire(); err != nil {
		return nil, err
	}
	defer e.release()
	prefix := nsPrefix(ns)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []int64
	for valid := it.First(); valid; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rest := it.Key()[len(prefix):]
		if len(rest) < 8 {
			return nil, errCorruptKey
		}
		s := binary.BigEndian.Uint64(rest)
		out = append(out, int64(s))
		if s == ^uint64(0) {
			break
		}
		valid = it.SeekGE(appendU64(append([]byte(nil), prefix...), s+1))
	}
	return out, it.Error()
}

// DropSlice implements storage.Engine with a durable range tombstone, then compacts the range
// so the disk space is returned rather than waiting for background compactions.
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

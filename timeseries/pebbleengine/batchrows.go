package pebbleengine

import (
	"bytes"
	"cmp"
	"slices"
	"sync"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// batchRows holds the rows of one storage.Batch (event rows, index rows, keyword postings)
// in one buffer, so they can be handed to pebble in key order. Pebble inserts a batch into
// the memtable's skiplist one key after another and starts each search from where the last
// insert ended; in key order most searches start a few nodes away instead of at the top of
// a list of millions, which was the largest single cost of bulk ingest (key comparisons in
// the skiplist search).
type batchRows struct {
	buf  []byte
	rows []batchRow
}

// batchRow is one row: key buf[off:mid], value buf[mid:end].
type batchRow struct {
	off, mid, end int
	merge         bool // a Merge of a keyed list (event and index rows), else a Set (posting)
}

var rowsPool = sync.Pool{New: func() any { return new(batchRows) }}

func (r *batchRows) key(x batchRow) []byte   { return r.buf[x.off:x.mid:x.mid] }
func (r *batchRows) value(x batchRow) []byte { return r.buf[x.mid:x.end:x.end] }

// build encodes every row of b.
func (r *batchRows) build(b *storage.Batch) {
	r.buf, r.rows = r.buf[:0], r.rows[:0]
	for i := range b.Writes {
		w := &b.Writes[i]
		p := w.Partition
		off := len(r.buf)
		r.buf = eventKey(r.buf, b.Namespace, p, w.Event.Time, w.Event.ID)
		mid := len(r.buf)
		r.buf = encodeItems(r.buf, w.Event.Items)
		r.rows = append(r.rows, batchRow{off, mid, len(r.buf), true})
		if len(w.Index) == 0 {
			continue
		}
		off = len(r.buf)
		r.buf = indexRowKey(r.buf, b.Namespace, p.Slice, p.Bucket, w.Event)
		mid = len(r.buf)
		r.buf = encodeIndexEntries(r.buf, w.Index)
		r.rows = append(r.rows, batchRow{off, mid, len(r.buf), true})
		for _, ix := range w.Index {
			if ix.Kind == storage.KindInteger {
				continue // served from the index row
			}
			off = len(r.buf)
			r.buf = postingKey(r.buf, b.Namespace, p.Slice, p.Bucket, ix, w.Event)
			r.rows = append(r.rows, batchRow{off, len(r.buf), len(r.buf), false})
		}
	}
}

// sorted returns the rows in key order; rows with equal keys keep their order (two writes
// of one event in a batch merge in the order they were written), by their position in buf.
// pdqsort with that tie-break costs about half of a stable sort here.
func (r *batchRows) sorted() []batchRow {
	slices.SortFunc(r.rows, func(a, b batchRow) int {
		if c := bytes.Compare(r.key(a), r.key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.off, b.off)
	})
	return r.rows
}

package pebbleengine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// An event row and an index row each hold a keyed list: (key, value) pairs encoded as
// uvarint(len(key)) key uvarint(len(value)) value. Rows are written with pebble's Merge, and
// keyedListMerger resolves the operands of one row per key, the newest operand winning; so
// re-writing an event adds and overwrites items without reading the row first, which keeps
// one key per event (instead of one per item) and the per-item idempotency the API promises.

// errCorruptValue reports a row value that does not decode.
var errCorruptValue = errors.New("pebbleengine: corrupt row value")

func appendPair(dst, k, v []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(k)))
	dst = append(dst, k...)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// forEachPair decodes a keyed list; k and v alias b.
func forEachPair(b []byte, fn func(k, v []byte)) error {
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return errCorruptValue
		}
		k := b[w : w+int(n)]
		b = b[w+int(n):]
		n, w = binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return errCorruptValue
		}
		fn(k, b[w:w+int(n)])
		b = b[w+int(n):]
	}
	return nil
}

// mergerName is recorded by pebble in the store's OPTIONS file; a store written with another
// merge operator (an older layout) refuses to open instead of being misread.
const mergerName = "floodgate.keyed-list.v1"

var keyedListMergeOperator = &pebble.Merger{
	Name: mergerName,
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		m := mergerPool.Get().(*keyedListMerger)
		m.add(value)
		return m, nil
	},
}

// Pebble makes a merger for every merge row a read or a compaction meets, usually to
// resolve a single operand, so mergers and their buffers are pooled: Finish hands pebble the
// merger as the closer of its result, and closing it returns the merger to the pool.
var mergerPool = sync.Pool{New: func() any { return new(keyedListMerger) }}

// keyedListMerger collects copies of the operands (pebble keeps ownership of the slices it
// passes) and resolves them in Finish.
type keyedListMerger struct {
	buf     []byte // operands back to back
	ends    []int  // where each operand ends in buf, in arrival order
	out     []byte // the merged result of several operands
	newer   bool   // operands after the first arrived older and older (MergeOlder)
	scratch [][]byte
}

func (m *keyedListMerger) add(value []byte) {
	m.buf = append(m.buf, value...)
	m.ends = append(m.ends, len(m.buf))
}

func (m *keyedListMerger) MergeNewer(value []byte) error {
	m.add(value)
	return nil
}

func (m *keyedListMerger) MergeOlder(value []byte) error {
	m.add(value)
	m.newer = true // operands arrive newest first from here on; reversed in Finish
	return nil
}

func (m *keyedListMerger) Finish(bool) ([]byte, io.Closer, error) {
	if len(m.ends) == 1 {
		// Every operand is written sorted and without duplicate keys (encodeItems,
		// encodeIndexEntries), so a lone operand is already the answer. This is the common
		// case on reads: an event written once.
		return m.buf, m, nil
	}
	operands := m.scratch[:0]
	start := 0
	for _, end := range m.ends {
		operands = append(operands, m.buf[start:end])
		start = end
	}
	m.scratch = operands
	if m.newer {
		// The first operand (from Merge) is the newest; the rest arrived older and older.
		slices.Reverse(operands)
	}
	out, err := mergeKeyedLists(m.out[:0], operands)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	m.out = out
	return out, m, nil
}

// Close returns the merger to the pool; pebble calls it once it is done with Finish's result.
func (m *keyedListMerger) Close() error {
	if cap(m.buf)+cap(m.out) > 1<<20 {
		return nil // one huge row: let it go rather than pin its buffers
	}
	m.buf, m.ends, m.out, m.newer = m.buf[:0], m.ends[:0], m.out[:0], false
	clear(m.scratch[:cap(m.scratch)])
	m.scratch = m.scratch[:0]
	mergerPool.Put(m)
	return nil
}

type pair struct{ k, v []byte }

// mergeKeyedLists appends to out the operands (oldest first) resolved into one list sorted
// by key, the newest value of each key winning.
func mergeKeyedLists(out []byte, operands [][]byte) ([]byte, error) {
	var pairs []pair
	for _, op := range operands {
		if err := forEachPair(op, func(k, v []byte) { pairs = append(pairs, pair{k, v}) }); err != nil {
			return nil, err
		}
	}
	// Stable sort keeps operands' order among equal keys, so the last of a run is the newest.
	slices.SortStableFunc(pairs, func(a, b pair) int { return bytes.Compare(a.k, b.k) })
	for i, p := range pairs {
		if i+1 < len(pairs) && bytes.Equal(pairs[i+1].k, p.k) {
			continue
		}
		out = appendPair(out, p.k, p.v)
	}
	return out, nil
}

// encodeItems encodes an event's items sorted by key without duplicates (the last of equal
// keys wins), the form every stored operand has.
func encodeItems(dst []byte, items []storage.Item) []byte {
	sorted := true
	for i := 1; i < len(items); i++ {
		if bytes.Compare(items[i-1].Key, items[i].Key) >= 0 {
			sorted = false
			break
		}
	}
	if !sorted {
		items = slices.Clone(items)
		slices.SortStableFunc(items, func(a, b storage.Item) int { return bytes.Compare(a.Key, b.Key) })
	}
	for i, it := range items {
		if i+1 < len(items) && bytes.Equal(items[i+1].Key, it.Key) {
			continue
		}
		dst = appendPair(dst, it.Key, it.Value)
	}
	return dst
}

// Index-row entry value: kind byte (bit 0x80 set when Raw equals Value and is omitted),
// for integers 8 bytes of the value, then uvarint(len(Value)) Value, then Raw.
const rawIsValue = 0x80

// encodeIndexEntries encodes entries sorted by field without duplicates (the last of equal
// fields wins, as in a merged queue write).
func encodeIndexEntries(dst []byte, entries []storage.IndexEntry) []byte {
	sorted := true
	for i := 1; i < len(entries); i++ {
		if entries[i-1].Field >= entries[i].Field {
			sorted = false
			break
		}
	}
	if !sorted {
		entries = slices.Clone(entries)
		slices.SortStableFunc(entries, func(a, b storage.IndexEntry) int { return strings.Compare(a.Field, b.Field) })
	}
	var scratch [64]byte // an entry's encoding, usually without a heap allocation
	v := scratch[:0]
	for i, e := range entries {
		if i+1 < len(entries) && entries[i+1].Field == e.Field {
			continue
		}
		v = encodeIndexEntry(v[:0], e)
		dst = appendPair(dst, []byte(e.Field), v)
	}
	return dst
}

func encodeIndexEntry(dst []byte, e storage.IndexEntry) []byte {
	kind := byte(e.Kind)
	same := bytes.Equal(e.Raw, e.Value)
	if same {
		kind |= rawIsValue
	}
	dst = append(dst, kind)
	if e.Kind == storage.KindInteger {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Int))
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Value)))
	dst = append(dst, e.Value...)
	if !same {
		dst = append(dst, e.Raw...)
	}
	return dst
}

// decodeIndexEntry decodes one entry; Value and Raw alias v.
func decodeIndexEntry(field, v []byte) (storage.IndexEntry, error) {
	if len(v) < 1 {
		return storage.IndexEntry{}, errCorruptValue
	}
	e := storage.IndexEntry{Field: string(field), Kind: storage.IndexKind(v[0] &^ rawIsValue)}
	same := v[0]&rawIsValue != 0
	v = v[1:]
	if e.Kind == storage.KindInteger {
		if len(v) < 8 {
			return e, errCorruptValue
		}
		e.Int = int64(binary.BigEndian.Uint64(v))
		v = v[8:]
	}
	n, w := binary.Uvarint(v)
	if w <= 0 || uint64(len(v)-w) < n {
		return e, errCorruptValue
	}
	e.Value = v[w : w+int(n) : w+int(n)]
	e.Raw = v[w+int(n):]
	if same {
		e.Raw = e.Value
	}
	return e, nil
}

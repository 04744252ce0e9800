package pebbleengine

import (
	"encoding/binary"
	"errors"
	"math"
)

// Key layout (all components order-preserving, strings escaped so they self-delimit):
//
//	slice prefix:  esc(ns) | be64(slice)
//	event row:     slice prefix | 'e' | esc(tsid) | be64(bucket) | be16(eventBucket) | inv(time) | esc(id)  -> items (keyed list)
//	index row:     slice prefix | 'x' | be64(bucket) | inv(time) | esc(tsid) | esc(id)                  -> indexed values (keyed list)
//	keyword post:  slice prefix | 'k' | esc(field) | be64(bucket) | esc(value) | inv(time) | esc(tsid) | esc(id)
//	slice meta:    0x00 'm' | esc(ns) | be64(slice)  -> be64(end) be64(bucketMs) be32(eventBuckets) status
//
// Putting the slice right after the namespace makes a slice one contiguous key range, so
// retention is a single DeleteRange. Within a partition the inverted time sorts events newest
// first. An event is one row whatever its item count; the index row carries every indexed
// value of an event, so integer ranges and aggregations scan it instead of separate postings,
// and only keyword/boolean equality has a posting per field (to seek by value). The meta
// prefix starts with 0x00, which no escaped namespace does (names start with [A-Za-z0-9];
// even an empty one escapes to 0x00 0x01).
const (
	tagEvent    = 'e'
	tagIndexRow = 'x'
	tagKeyword  = 'k'
)

var metaPrefix = []byte{0, 'm'}

func sliceMetaKey(ns string, slice int64) []byte {
	return appendU64(appendEscaped(append([]byte(nil), metaPrefix...), ns), uint64(slice))
}

func indexRowPrefix(ns string, slice, bucket int64) []byte {
	return appendIndexRowPrefix(nil, ns, slice, bucket)
}

func appendIndexRowPrefix(dst []byte, ns string, slice, bucket int64) []byte {
	dst = append(appendSlicePrefix(dst, ns, slice), tagIndexRow)
	return appendU64(dst, uint64(bucket))
}

var errCorruptKey = errors.New("pebbleengine: corrupt key")

// appendEscaped appends s so that it sorts like s and ends with a terminator: 0x00 becomes
// 0x00 0xFF and the terminator is 0x00 0x01.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xFF)
			continue
		}
		dst = append(dst, s[i])
	}
	return append(dst, 0, 1)
}

func appendEscapedBytes(dst, s []byte) []byte {
	for _, c := range s {
		if c == 0 {
			dst = append(dst, 0, 0xFF)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, 0, 1)
}

// readEscaped decodes one escaped component, returning it and the rest of the key. Without
// escaped zero bytes (the common case) out aliases b; callers copy what they keep.
func readEscaped(b []byte) (out, rest []byte, err error) {
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		if i+1 >= len(b) {
			return nil, nil, errCorruptKey
		}
		switch b[i+1] {
		case 1:
			return b[:i:i], b[i+2:], nil
		case 0xFF:
			return readEscapedSlow(b)
		default:
			return nil, nil, errCorruptKey
		}
	}
	return nil, nil, errCorruptKey
}

func readEscapedSlow(b []byte) (out, rest []byte, err error) {
	out = make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			return nil, nil, errCorruptKey
		}
		switch b[i+1] {
		case 0xFF:
			out = append(out, 0)
			i++
		case 1:
			return out, b[i+2:], nil
		default:
			return nil, nil, errCorruptKey
		}
	}
	return nil, nil, errCorruptKey
}

func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// inv maps a time (ms, may be -1 for bound arithmetic) to a value that sorts newest first.
func inv(t int64) uint64 { return uint64(math.MaxInt64 - t) }

func uninv(v uint64) int64 { return math.MaxInt64 - int64(v) }

// sortableInt flips the sign bit so negative integers sort before positive ones.
func sortableInt(v int64) uint64 { return uint64(v) ^ (1 << 63) }

func unsortableInt(v uint64) int64 { return int64(v ^ (1 << 63)) }

func slicePrefix(ns string, slice int64) []byte { return appendSlicePrefix(nil, ns, slice) }

// The append forms build a key in the caller's buffer: the write path builds three keys per
// event and the read path one per event it fetches, so a prefix allocated on its own and
// then copied cost an allocation or two per key.
func appendSlicePrefix(dst []byte, ns string, slice int64) []byte {
	return appendU64(appendEscaped(dst, ns), uint64(slice))
}

func partitionPrefix(ns string, slice int64, tsid string, bucket int64, eb uint16) []byte {
	return appendPartitionPrefix(nil, ns, slice, tsid, bucket, eb)
}

func appendPartitionPrefix(dst []byte, ns string, slice int64, tsid string, bucket int64, eb uint16) []byte {
	dst = append(appendSlicePrefix(dst, ns, slice), tagEvent)
	dst = appendEscaped(dst, tsid)
	dst = appendU64(dst, uint64(bucket))
	return binary.BigEndian.AppendUint16(dst, eb)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

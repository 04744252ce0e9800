package timeseries

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

const maxIDBytes = 256

// timeLayoutOut renders event times in RFC 3339 with exactly three fractional digits, UTC.
const timeLayoutOut = "2006-01-02T15:04:05.000Z07:00"

func formatTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(timeLayoutOut) }

// parseTime accepts RFC 3339 with at most millisecond precision; finer precision is refused
// rather than truncated because truncation could merge two distinct events' idempotency keys.
func parseTime(s string) (int64, string) {
	if s == "" {
		return 0, "is required (RFC 3339, e.g. 2026-01-02T15:04:05.123Z)"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Sprintf("%q is not RFC 3339 (e.g. 2026-01-02T15:04:05.123Z)", s)
	}
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return 0, fmt.Sprintf("%q has sub-millisecond precision; at most milliseconds are supported", s)
	}
	ms := t.UnixMilli()
	if ms < 0 {
		return 0, fmt.Sprintf("%q is before 1970-01-01", s)
	}
	return ms, ""
}

func decodeB64(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

func checkID(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > maxIDBytes:
		return fmt.Sprintf("longer than %d bytes", maxIDBytes)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}

// parseBound parses an interval bound of any precision, rounded up to the millisecond: an
// event at ms t is in [start, end) exactly when t >= ceil(start) and t < ceil(end).
func parseBound(s string) (int64, string) {
	if s == "" {
		return 0, "is required (RFC 3339, e.g. 2026-01-02T15:04:05.123Z)"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Sprintf("%q is not RFC 3339 (e.g. 2026-01-02T15:04:05.123Z)", s)
	}
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 && !t.Before(time.UnixMilli(ms)) {
		ms++
	}
	return max(ms, 0), ""
}

// parseInterval validates a half-open interval and returns it in ms.
func parseInterval(iv TimeInterval, field string) (storage.TimeRange, *apiError) {
	start, msg := parseBound(iv.Start)
	if msg != "" {
		return storage.TimeRange{}, badField(field+".start", msg)
	}
	end, msg := parseBound(iv.End)
	if msg != "" {
		return storage.TimeRange{}, badField(field+".end", msg)
	}
	if end <= start {
		return storage.TimeRange{}, badField(field, "end must be after start (the interval is [start, end))")
	}
	return storage.TimeRange{Start: start, End: end}, nil
}

// buildWrites validates every event of a batch before anything is written, so a rejected
// batch leaves no trace; it returns the engine writes with their index postings.
func (s *Service) buildWrites(ctx context.Context, ns *namespace, req *WriteRequest, now time.Time) ([]storage.Write, *apiError) {
	cfg := ns.cfg
	if len(req.Events) == 0 {
		return nil, badField("events", "must hold at least one event")
	}
	if len(req.Events) > cfg.Limits.MaxBatchEvents {
		e := badField("events", fmt.Sprintf("batch of %d events is over the limit of %d", len(req.Events), cfg.Limits.MaxBatchEvents))
		e.status = 413
		return nil, e
	}
	nowMs := now.UnixMilli()
	oldest := nowMs - cfg.AcceptLimit.Milliseconds()
	newest := nowMs + cfg.FutureLimit.Milliseconds()
	writes := make([]storage.Write, 0, len(req.Events))
	// Items of the whole batch share one decode buffer and one item array: a few allocations
	// per request instead of several per item. Paths for errors are built only on error.
	totalItems, totalB64 := 0, 0
	for i := range req.Events {
		totalItems += len(req.Events[i].EventItems)
		for _, it := range req.Events[i].EventItems {
			totalB64 += base64.StdEncoding.DecodedLen(len(it.EventItemKey)) + base64.StdEncoding.DecodedLen(len(it.EventItemValue))
		}
	}
	arena := make([]byte, 0, totalB64) // exactly what the items decode into
	itemPool := make([]storage.Item, 0, totalItems)
	indexPool := make([]storage.IndexEntry, 0, totalItems) // at most one entry per item
	for i := range req.Events {
		ev := &req.Events[i]
		path := func() string { return "events[" + strconv.Itoa(i) + "]" }
		if msg := checkID(ev.TimeSeriesID); msg != "" {
			return nil, badEvent(i, path()+".timeSeriesId", msg)
		}
		if msg := checkID(ev.EventID); msg != "" {
			return nil, badEvent(i, path()+".eventId", msg)
		}
		t, msg := parseTime(ev.EventTime)
		if msg != "" {
			return nil, badEvent(i, path()+".eventTime", msg)
		}
		if t < oldest {
			return nil, badEvent(i, path()+".eventTime", fmt.Sprintf("%s is older than the namespace's acceptLimit (%s)", ev.EventTime, cfg.AcceptLimit))
		}
		if t > newest {
			return nil, badEvent(i, path()+".eventTime", fmt.Sprintf("%s is more than futureLimit (%s) ahead of the server clock", ev.EventTime, cfg.FutureLimit))
		}
		if len(ev.EventItems) > cfg.Limits.MaxEventItems {
			return nil, badEvent(i, path()+".eventItems", fmt.Sprintf("%d items is over the limit of %d", len(ev.EventItems), cfg.Limits.MaxEventItems))
		}
		slice, err := ns.slices.ensure(ctx, t, cfg.TimePartition)
		if err != nil {
			return nil, storageError(ctx, err)
		}
		start, indexStart := len(itemPool), len(indexPool)
		w := storage.Write{
			Partition: partitionIn(slice, ev.TimeSeriesID, t, ev.EventID),
			Event:     storage.Event{TimeSeriesID: ev.TimeSeriesID, Time: t, ID: ev.EventID},
		}
		for j, it := range ev.EventItems {
			ipath := func() string { return path() + ".eventItems[" + strconv.Itoa(j) + "]" }
			var k, v []byte
			var ok bool
			if arena, k, ok = appendB64(arena, it.EventItemKey); !ok {
				return nil, badEvent(i, ipath()+".eventItemKey", "is not valid base64")
			}
			if len(k) == 0 {
				return nil, badEvent(i, ipath()+".eventItemKey", "must not be empty")
			}
			for _, prev := range itemPool[start:] {
				if string(prev.Key) == string(k) {
					return nil, badEvent(i, ipath()+".eventItemKey", fmt.Sprintf("duplicate key %q in one event", k))
				}
			}
			if arena, v, ok = appendB64(arena, it.EventItemValue); !ok {
				return nil, badEvent(i, ipath()+".eventItemValue", "is not valid base64")
			}
			if len(k)+len(v) > cfg.Limits.MaxItemBytes {
				return nil, badEvent(i, ipath(), fmt.Sprintf("key plus value is %d bytes, over the limit of %d", len(k)+len(v), cfg.Limits.MaxItemBytes))
			}
			itemPool = append(itemPool, storage.Item{Key: k, Value: v})
			if ft, indexed := cfg.Index.FieldMapping[string(k)]; indexed {
				entry, msg := indexEntry(ns.fieldNames[string(k)], ft, v)
				if msg != "" {
					return nil, badEvent(i, ipath()+".eventItemValue", msg)
				}
				indexPool = append(indexPool, entry)
			}
		}
		w.Event.Items = itemPool[start:len(itemPool):len(itemPool)]
		if len(indexPool) > indexStart {
			w.Index = indexPool[indexStart:len(indexPool):len(indexPool)]
		}
		// Stored rows hold items sorted by key and index entries by field; in that order
		// already, the engine encodes them without copying and sorting each event.
		slices.SortFunc(w.Event.Items, func(a, b storage.Item) int { return bytes.Compare(a.Key, b.Key) })
		slices.SortFunc(w.Index, func(a, b storage.IndexEntry) int { return strings.Compare(a.Field, b.Field) })
		writes = append(writes, w)
	}
	return writes, nil
}

// appendB64 decodes standard base64 s onto arena and returns the decoded bytes. A full
// arena is replaced, not grown, so slices handed out earlier stay valid.
func appendB64(arena []byte, s string) ([]byte, []byte, bool) {
	n := base64.StdEncoding.DecodedLen(len(s))
	if cap(arena)-len(arena) < n {
		arena = make([]byte, 0, max(n, 16<<10))
	}
	start := len(arena)
	got, err := base64.StdEncoding.Decode(arena[start:start+n], []byte(s))
	if err != nil {
		return arena, nil, false
	}
	arena = arena[:start+got]
	return arena, arena[start : start+got : start+got], true
}

// indexEntry encodes an indexed field's value, checking it matches the field's type.
func indexEntry(field string, ft FieldType, v []byte) (storage.IndexEntry, string) {
	switch ft {
	case FieldInteger:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return storage.IndexEntry{}, fmt.Sprintf("field %q is indexed as INTEGER; %q is not a base-10 int64", field, v)
		}
		return storage.IndexEntry{Field: field, Kind: storage.KindInteger, Int: n, Raw: v}, ""
	case FieldBoolean:
		b, err := strconv.ParseBool(string(v))
		if err != nil {
			return storage.IndexEntry{}, fmt.Sprintf("field %q is indexed as BOOLEAN; %q is not true or false", field, v)
		}
		return storage.IndexEntry{Field: field, Kind: storage.KindBoolean, Value: []byte(strconv.FormatBool(b)), Raw: v}, ""
	default:
		return storage.IndexEntry{Field: field, Kind: storage.KindKeyword, Value: v, Raw: v}, ""
	}
}

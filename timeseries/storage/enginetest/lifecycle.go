package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

func day(d int) int64 { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC).UnixMilli() }

// Retention drops whole slices deleteAfter past their end; younger slices stay whole.
func testRetention(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	f.writeSync(
		ev("r", time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC), "mar8", "device", "ios"),
		ev("r", time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC), "mar9", "device", "ios"),
		ev("r", time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC), "mar10", "device", "ios"),
	)
	list, err := sliceStarts(f.engine.Slices(context.Background(), Namespace))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []int{8, 9, 10} {
		if !slices.Contains(list, day(d)) {
			t.Fatalf("slices %v lack March %d", list, d)
		}
	}
	// March 8's slice ends March 9 00:00; with deleteAfter 96h it expires March 13 00:00.
	f.now = time.Date(2026, 3, 13, 6, 0, 0, 0, time.UTC)
	dropped, err := f.svc.EnforceRetention(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var droppedDays []int64
	for _, d := range dropped {
		droppedDays = append(droppedDays, d.Start.UnixMilli())
	}
	if !slices.Contains(droppedDays, day(8)) || slices.Contains(droppedDays, day(9)) || slices.Contains(droppedDays, day(10)) {
		t.Fatalf("dropped %v, want March 8's slice only among March 8-10", dropped)
	}
	list, err = sliceStarts(f.engine.Slices(context.Background(), Namespace))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(list, day(8)) || !slices.Contains(list, day(9)) || !slices.Contains(list, day(10)) {
		t.Fatalf("slices after retention %v: want March 9 and 10, not March 8", list)
	}
	// Read back at a time when March 9 is still within close_after (which fences reads too).
	f.now = BaseTime
	got := f.readAll(timeseries.ReadRequest{TimeSeriesID: "r", TimeInterval: interval(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), BaseTime.Add(time.Hour))})
	equalIDs(t, "read after retention", ids(got), []string{"mar10", "mar9"})
	q := eq("device", "ios")
	got = f.searchAll(timeseries.SearchRequest{TimeInterval: interval(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), BaseTime.Add(time.Hour)), SearchQuery: &q})
	equalIDs(t, "search after retention", ids(got), []string{"mar10", "mar9"})
	// Dropping is idempotent.
	if _, err := f.svc.EnforceRetention(context.Background()); err != nil {
		t.Fatalf("second retention pass: %v", err)
	}
}

// Bad input is refused with a 4xx naming the field, and a refused batch leaves no trace.
func testBadInput(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	good := ev("bad", BaseTime.Add(-time.Minute), "good", "device", "ios")
	for _, c := range []struct {
		name   string
		op     string
		body   string
		status int
		field  string
	}{
		{"bad base64 in the batch", timeseries.OpWriteSync, mustJSON(timeseries.WriteRequest{Namespace: Namespace, Events: []timeseries.EventRecord{good,
			{TimeSeriesID: "bad", EventTime: ts(BaseTime), EventID: "x", EventItems: []timeseries.EventItem{{EventItemKey: "%%%", EventItemValue: ""}}}}}), 400, "events[1].eventItems[0].eventItemKey"},
		{"too old", timeseries.OpWriteSync, mustJSON(timeseries.WriteRequest{Namespace: Namespace, Events: []timeseries.EventRecord{good, ev("bad", BaseTime.Add(-100*time.Hour), "old")}}), 400, "events[1].eventTime"},
		{"integer field not an integer", timeseries.OpWriteSync, mustJSON(timeseries.WriteRequest{Namespace: Namespace, Events: []timeseries.EventRecord{good, ev("bad", BaseTime, "x", "status", "five")}}), 400, "events[1].eventItems[0].eventItemValue"},
		{"unknown namespace", timeseries.OpRead, `{"namespace":"nope","timeSeriesId":"bad","timeInterval":{"start":"2026-03-10T00:00:00Z","end":"2026-03-11T00:00:00Z"}}`, 404, "namespace"},
		{"unknown JSON field", timeseries.OpRead, `{"namespace":"ct","timeSeriesId":"bad","pageSise":3}`, 400, "pageSise"},
		{"reversed interval", timeseries.OpRead, `{"namespace":"ct","timeSeriesId":"bad","timeInterval":{"start":"2026-03-11T00:00:00Z","end":"2026-03-10T00:00:00Z"}}`, 400, ""},
		{"foreign page token", timeseries.OpRead, `{"namespace":"ct","timeSeriesId":"bad","timeInterval":{"start":"2026-03-10T00:00:00Z","end":"2026-03-11T00:00:00Z"},"pageToken":"bm9wZQ"}`, 400, "pageToken"},
		{"search on an unindexed field", timeseries.OpSearch, `{"namespace":"ct","timeInterval":{"start":"2026-03-10T00:00:00Z","end":"2026-03-11T00:00:00Z"},"searchQuery":{"equals":{"eventItemKey":"bm90ZQ==","eventItemValue":"eA=="}}}`, 400, ""},
	} {
		st, body := f.svc.Handle(context.Background(), c.op, []byte(c.body))
		if st != c.status {
			t.Fatalf("%s: status %d, want %d: %s", c.name, st, c.status, body)
		}
		var eb timeseries.ErrorBody
		if err := json.Unmarshal(body, &eb); err != nil || eb.Error == "" {
			t.Fatalf("%s: error body %s is not a JSON error with a reason", c.name, body)
		}
		if c.field != "" && eb.Field != c.field {
			t.Fatalf("%s: field %q, want %q (%s)", c.name, eb.Field, c.field, body)
		}
	}
	got := f.readAll(timeseries.ReadRequest{TimeSeriesID: "bad", TimeInterval: interval(BaseTime.Add(-200*time.Hour), BaseTime.Add(time.Hour))})
	equalIDs(t, "after refused batches", ids(got), nil)
	// Ids and keys with quotes, unicode and control bytes are data, not syntax.
	odd := []string{`it's`, `"q"`, "ünï", "a\x00b", `'); DROP TABLE x; --`}
	var events []timeseries.EventRecord
	for i, id := range odd {
		events = append(events, ev(`se'ries"`, BaseTime.Add(-time.Duration(i+1)*time.Second), id, id, id))
	}
	f.writeSync(events...)
	got = f.readAll(timeseries.ReadRequest{TimeSeriesID: `se'ries"`, TimeInterval: interval(BaseTime.Add(-time.Hour), BaseTime)})
	equalIDs(t, "odd ids", ids(got), odd)
	for i, e := range got {
		if len(e.EventItems) != 1 || unb64(t, e.EventItems[0].EventItemKey) != odd[i] {
			t.Fatalf("odd item key of %q came back as %v", odd[i], e.EventItems)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The engine contract, directly: partition order, range and cursor (ties in a millisecond),
// stopping early, empty ranges.
func testContractScanPartition(t *testing.T, open Opener) {
	nc := NamespaceConfig()
	eng := open(t, map[string]timeseries.NamespaceConfig{Namespace: nc})
	t.Cleanup(func() { _ = eng.Close() })
	ctx := context.Background()
	bucket := BaseTime.Truncate(time.Hour).UnixMilli()
	p := storage.Partition{Slice: day(10), TimeSeriesID: "c", Bucket: bucket, EventBucket: 2}
	b := &storage.Batch{Namespace: Namespace}
	type tid struct {
		t  int64
		id string
	}
	var want []tid
	for i := 0; i < 30; i++ {
		at := bucket + int64(1000*(i/3)) // three events per millisecond
		id := fmt.Sprintf("id%02d", 29-i)
		b.Writes = append(b.Writes, storage.Write{Partition: p, Event: storage.Event{TimeSeriesID: "c", Time: at, ID: id,
			Items: []storage.Item{{Key: []byte("k"), Value: []byte(id)}}}})
		want = append(want, tid{at, id})
	}
	slices.SortFunc(want, func(a, b tid) int {
		if a.t != b.t {
			if a.t > b.t {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	if err := eng.Apply(ctx, b, storage.Durable); err != nil {
		t.Fatal(err)
	}
	if err := eng.Apply(ctx, &storage.Batch{Namespace: Namespace}, storage.Durable); err != nil {
		t.Fatalf("empty durable batch (a sync barrier): %v", err)
	}
	scan := func(r storage.TimeRange, after *storage.Cursor, limit int) []tid {
		var out []tid
		err := eng.ScanPartition(ctx, Namespace, p, r, after, func(e storage.Event) bool {
			if len(e.Items) != 1 || string(e.Items[0].Value) != e.ID {
				t.Fatalf("event %s has items %v", e.ID, e.Items)
			}
			out = append(out, tid{e.Time, e.ID})
			return len(out) < limit
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	full := storage.TimeRange{Start: bucket, End: bucket + 3600_000}
	if got := scan(full, nil, 1000); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("partition order\n got %v\nwant %v", got, want)
	}
	// Resume after every position, including ties inside one millisecond.
	for i := range want {
		got := scan(full, &storage.Cursor{Time: want[i].t, ID: want[i].id}, 1000)
		if fmt.Sprint(got) != fmt.Sprint(want[i+1:]) {
			t.Fatalf("after %v\n got %v\nwant %v", want[i], got, want[i+1:])
		}
	}
	if got := scan(full, nil, 4); len(got) != 4 {
		t.Fatalf("fn returning false must stop the scan: got %d events", len(got))
	}
	sub := storage.TimeRange{Start: bucket + 2000, End: bucket + 5000}
	var wantSub []tid
	for _, w := range want {
		if sub.Contains(w.t) {
			wantSub = append(wantSub, w)
		}
	}
	if got := scan(sub, nil, 1000); fmt.Sprint(got) != fmt.Sprint(wantSub) {
		t.Fatalf("range [%d, %d)\n got %v\nwant %v", sub.Start, sub.End, got, wantSub)
	}
	if got := scan(storage.TimeRange{Start: bucket + 5, End: bucket + 5}, nil, 1000); len(got) != 0 {
		t.Fatalf("empty range returned %v", got)
	}
	other := p
	other.EventBucket = 3
	if err := eng.ScanPartition(ctx, Namespace, other, full, nil, func(storage.Event) bool { t.Fatal("event in another event bucket"); return false }); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := eng.ScanPartition(cctx, Namespace, p, full, nil, func(storage.Event) bool { return true }); err == nil {
		t.Fatal("a scan with a cancelled context must return its error")
	}
}

// Index scans return refs in CompareRefs order, filtered by value or inclusive integer
// range and by time, resuming strictly after a ref.
func testContractScanIndex(t *testing.T, open Opener) {
	nc := NamespaceConfig()
	eng := open(t, map[string]timeseries.NamespaceConfig{Namespace: nc})
	t.Cleanup(func() { _ = eng.Close() })
	ctx := context.Background()
	bucket := BaseTime.Truncate(time.Hour).UnixMilli()
	b := &storage.Batch{Namespace: Namespace}
	for i := 0; i < 24; i++ {
		tsid := fmt.Sprintf("s%d", i%3)
		at := bucket + int64(100*(i/4))
		id := fmt.Sprintf("e%02d", i)
		b.Writes = append(b.Writes, storage.Write{
			Partition: storage.Partition{Slice: day(10), TimeSeriesID: tsid, Bucket: bucket, EventBucket: uint16(i % 4)},
			Event:     storage.Event{TimeSeriesID: tsid, Time: at, ID: id},
			Index: []storage.IndexEntry{
				{Field: "device", Kind: storage.KindKeyword, Value: []byte([]string{"ios", "web"}[i%2])},
				{Field: "status", Kind: storage.KindInteger, Int: int64(i*10 - 50)},
			},
		})
	}
	if err := eng.Apply(ctx, b, storage.Durable); err != nil {
		t.Fatal(err)
	}
	full := storage.TimeRange{Start: bucket, End: bucket + 3600_000}
	scan := func(ip storage.IndexPartition, m storage.IndexMatch, r storage.TimeRange, after *storage.Ref) []storage.Ref {
		var out []storage.Ref
		if err := eng.ScanIndex(ctx, Namespace, ip, m, r, after, func(ref storage.Ref) bool { out = append(out, ref); return true }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	expect := func(keep func(i int) bool, r storage.TimeRange) []storage.Ref {
		var out []storage.Ref
		for i, w := range b.Writes {
			if keep(i) && r.Contains(w.Event.Time) {
				out = append(out, storage.Ref{Time: w.Event.Time, TimeSeriesID: w.Event.TimeSeriesID, ID: w.Event.ID})
			}
		}
		slices.SortFunc(out, storage.CompareRefs)
		return out
	}
	kw := storage.IndexPartition{Slice: day(10), Bucket: bucket, Field: "device", Kind: storage.KindKeyword}
	want := expect(func(i int) bool { return i%2 == 0 }, full)
	if got := scan(kw, storage.IndexMatch{Equals: []byte("ios")}, full, nil); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("device=ios\n got %v\nwant %v", got, want)
	}
	for i := range want {
		if got := scan(kw, storage.IndexMatch{Equals: []byte("ios")}, full, &want[i]); fmt.Sprint(got) != fmt.Sprint(want[i+1:]) {
			t.Fatalf("device=ios after %v\n got %v\nwant %v", want[i], got, want[i+1:])
		}
	}
	in := storage.IndexPartition{Slice: day(10), Bucket: bucket, Field: "status", Kind: storage.KindInteger}
	sub := storage.TimeRange{Start: bucket + 100, End: bucket + 500}
	want = expect(func(i int) bool { v := int64(i*10 - 50); return v >= -20 && v <= 120 }, sub)
	if got := scan(in, storage.IndexMatch{Min: -20, Max: 120}, sub, nil); fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
		t.Fatalf("status in [-20, 120] within [%d, %d)\n got %v\nwant %v", sub.Start, sub.End, got, want)
	}
	if got := scan(kw, storage.IndexMatch{Equals: []byte("tv")}, full, nil); len(got) != 0 {
		t.Fatalf("device=tv: %v", got)
	}
}

// Slices lists the slices holding data, ascending; GetEvent finds one event or reports its
// absence; DropSlice removes one slice whole.
func testContractSlices(t *testing.T, open Opener) {
	nc := NamespaceConfig()
	eng := open(t, map[string]timeseries.NamespaceConfig{Namespace: nc})
	t.Cleanup(func() { _ = eng.Close() })
	ctx := context.Background()
	var b storage.Batch
	b.Namespace = Namespace
	for _, d := range []int{9, 7, 8} {
		at := day(d) + 3600_000*5 + 17
		p := storage.Partition{Slice: day(d), TimeSeriesID: "g", Bucket: day(d) + 3600_000*5, EventBucket: 1}
		b.Writes = append(b.Writes, storage.Write{Partition: p, Event: storage.Event{TimeSeriesID: "g", Time: at, ID: fmt.Sprint("d", d),
			Items: []storage.Item{{Key: []byte("x"), Value: []byte{}}, {Key: []byte("y"), Value: []byte{0, 1}}}}})
	}
	// The caller records a slice in the slice table before writing into it.
	for _, d := range []int{9, 7, 8} {
		m := storage.SliceMeta{Start: day(d), End: day(d) + 86_400_000, BucketMs: 3_600_000, EventBuckets: 2, Status: storage.SliceOpen}
		if err := eng.PutSlice(ctx, Namespace, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Apply(ctx, &b, storage.Buffered); err != nil {
		t.Fatal(err)
	}
	list, err := sliceStarts(eng.Slices(ctx, Namespace))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSorted(list) {
		t.Fatalf("slices not ascending: %v", list)
	}
	for _, d := range []int{7, 8, 9} {
		if !slices.Contains(list, day(d)) {
			t.Fatalf("slices %v lack March %d", list, d)
		}
	}
	w := b.Writes[0]
	got, ok, err := eng.GetEvent(ctx, Namespace, w.Partition, w.Event.Time, w.Event.ID)
	if err != nil || !ok {
		t.Fatalf("GetEvent of a written event: ok=%v err=%v", ok, err)
	}
	if len(got.Items) != 2 || string(got.Items[0].Key) != "x" || len(got.Items[0].Value) != 0 || string(got.Items[1].Value) != "\x00\x01" {
		t.Fatalf("GetEvent items %v", got.Items)
	}
	if _, ok, err := eng.GetEvent(ctx, Namespace, w.Partition, w.Event.Time, "nope"); ok || err != nil {
		t.Fatalf("GetEvent of a missing id: ok=%v err=%v", ok, err)
	}
	if _, ok, err := eng.GetEvent(ctx, Namespace, w.Partition, w.Event.Time+1, w.Event.ID); ok || err != nil {
		t.Fatalf("GetEvent at another time: ok=%v err=%v", ok, err)
	}
	if err := eng.DropSlice(ctx, Namespace, day(8)); err != nil {
		t.Fatal(err)
	}
	list, err = sliceStarts(eng.Slices(ctx, Namespace))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(list, day(8)) || !slices.Contains(list, day(7)) || !slices.Contains(list, day(9)) {
		t.Fatalf("after dropping March 8: %v", list)
	}
	w8 := b.Writes[2]
	if _, ok, err := eng.GetEvent(ctx, Namespace, w8.Partition, w8.Event.Time, w8.Event.ID); ok || err != nil {
		t.Fatalf("event of a dropped slice: ok=%v err=%v", ok, err)
	}
	if _, ok, _ := eng.GetEvent(ctx, Namespace, w.Partition, w.Event.Time, w.Event.ID); !ok {
		t.Fatal("dropping March 8 lost March 9's event")
	}
}

// sliceStarts lists the starts of a slice table.
func sliceStarts(metas []storage.SliceMeta, err error) ([]int64, error) {
	out := make([]int64, 0, len(metas))
	for _, m := range metas {
		out = append(out, m.Start)
	}
	return out, err
}

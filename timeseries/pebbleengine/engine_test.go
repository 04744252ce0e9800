package pebbleengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"go.uber.org/goleak"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEscapingPreservesOrderAndRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	alphabet := []byte{0, 1, 2, 0xFE, 0xFF, 'a'}
	var strs []string
	for i := 0; i < 400; i++ {
		b := make([]byte, rng.IntN(5))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		strs = append(strs, string(b))
	}
	for _, a := range strs {
		enc := appendEscaped(nil, a)
		dec, rest, err := readEscaped(append(enc, 'x'))
		if err != nil || string(dec) != a || string(rest) != "x" {
			t.Fatalf("round trip of %q: %q %q %v", a, dec, rest, err)
		}
		for _, b := range strs {
			// Order must hold even with more key components appended after the string.
			ea := append(appendEscaped(nil, a), 0xFF)
			eb := append(appendEscaped(nil, b), 0x00)
			if want, got := sign(bytes.Compare([]byte(a), []byte(b))), sign(bytes.Compare(ea, eb)); a != b && want != got {
				t.Fatalf("order of %q vs %q not preserved", a, b)
			}
		}
	}
}

func sign(c int) int { return max(-1, min(1, c)) }

func TestSortableIntOrder(t *testing.T) {
	vals := []int64{-1 << 63, -5, -1, 0, 1, 7, 1<<63 - 1}
	for i := 1; i < len(vals); i++ {
		if sortableInt(vals[i-1]) >= sortableInt(vals[i]) {
			t.Fatalf("%d and %d out of order", vals[i-1], vals[i])
		}
		if unsortableInt(sortableInt(vals[i])) != vals[i] {
			t.Fatalf("round trip of %d", vals[i])
		}
	}
}

func open(t *testing.T) *Engine {
	t.Helper()
	e, err := Open(t.TempDir(), Options{CacheBytes: 4 << 20, MemTableBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestScanPartitionOrderRangeCursorAndItems(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	p := storage.Partition{Slice: 0, TimeSeriesID: "s\x00x", Bucket: 0, EventBucket: 1}
	var ws []storage.Write
	for i, tm := range []int64{5, 9, 9, 1, 7, 0} {
		id := string(rune('a' + i))
		ws = append(ws, storage.Write{Partition: p, Event: storage.Event{TimeSeriesID: p.TimeSeriesID, Time: tm, ID: id,
			Items: []storage.Item{{Key: []byte("k2"), Value: []byte(id)}, {Key: []byte("k1\x00"), Value: nil}}}})
	}
	// A neighbouring partition and namespace must not leak in.
	other := p
	other.EventBucket = 2
	ws = append(ws, storage.Write{Partition: other, Event: storage.Event{TimeSeriesID: p.TimeSeriesID, Time: 5, ID: "zz"}})
	if err := e.Apply(ctx, &storage.Batch{Namespace: "ns", Writes: ws}, storage.Durable); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(ctx, &storage.Batch{Namespace: "ns2", Writes: ws[:1]}, storage.Durable); err != nil {
		t.Fatal(err)
	}
	scan := func(r storage.TimeRange, after *storage.Cursor) []string {
		var out []string
		err := e.ScanPartition(ctx, "ns", p, r, after, func(ev storage.Event) bool {
			if len(ev.Items) != 2 || string(ev.Items[0].Key) != "k1\x00" || string(ev.Items[1].Value) != ev.ID {
				t.Fatalf("items of %s: %+v", ev.ID, ev.Items)
			}
			out = append(out, ev.ID)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := scan(storage.TimeRange{Start: 0, End: 100}, nil); !slices.Equal(got, []string{"b", "c", "e", "a", "d", "f"}) {
		t.Fatalf("full scan %v", got)
	}
	if got := scan(storage.TimeRange{Start: 1, End: 9}, nil); !slices.Equal(got, []string{"e", "a", "d"}) {
		t.Fatalf("range [1,9) %v", got)
	}
	if got := scan(storage.TimeRange{Start: 0, End: 100}, &storage.Cursor{Time: 9, ID: "b"}); !slices.Equal(got, []string{"c", "e", "a", "d", "f"}) {
		t.Fatalf("after (9,b) %v", got)
	}
	ev, ok, err := e.GetEvent(ctx, "ns", p, 9, "c")
	if err != nil || !ok || ev.ID != "c" {
		t.Fatalf("GetEvent: %+v %v %v", ev, ok, err)
	}
	if _, ok, _ := e.GetEvent(ctx, "ns", p, 9, "x"); ok {
		t.Fatal("GetEvent found a missing event")
	}
}

func TestIndexScanAndSliceDrop(t *testing.T) {
	e := open(t)
	ctx := context.Background()
	var ws []storage.Write
	for i := 0; i < 50; i++ {
		slice := int64(i%2) * 1000
		p := storage.Partition{Slice: slice, TimeSeriesID: "s", Bucket: slice}
		ws = append(ws, storage.Write{Partition: p,
			Event: storage.Event{TimeSeriesID: "s", Time: slice + int64(i), ID: "e"},
			Index: []storage.IndexEntry{
				{Field: "n", Kind: storage.KindInteger, Int: int64(i - 25)},
				{Field: "k", Kind: storage.KindKeyword, Value: []byte{byte(i % 3)}},
			}})
	}
	if err := e.Apply(ctx, &storage.Batch{Namespace: "ns", Writes: ws}, storage.Durable); err != nil {
		t.Fatal(err)
	}
	refs := func(slice int64, kind storage.IndexKind, field string, m storage.IndexMatch) []int64 {
		var out []int64
		err := e.ScanIndex(ctx, "ns", storage.IndexPartition{Slice: slice, Bucket: slice, Field: field, Kind: kind}, m, storage.TimeRange{Start: 0, End: 1 << 40}, nil, func(r storage.Ref) bool {
			out = append(out, r.Time)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := refs(0, storage.KindInteger, "n", storage.IndexMatch{Min: -3, Max: 3})
	if !slices.Equal(got, []int64{28, 26, 24, 22}) {
		t.Fatalf("integer range: %v", got)
	}
	got = refs(1000, storage.KindKeyword, "k", storage.IndexMatch{Equals: []byte{0}})
	if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i] > got[j] }) || len(got) != 8 {
		t.Fatalf("keyword: %v", got)
	}
	metas := []storage.SliceMeta{
		{Start: 0, End: 1000, BucketMs: 1000, EventBuckets: 1, Status: storage.SliceOpen},
		{Start: 1000, End: 2000, BucketMs: 500, EventBuckets: 3, Status: storage.SliceOpen},
	}
	for _, m := range metas {
		if err := e.PutSlice(ctx, "ns", m); err != nil {
			t.Fatal(err)
		}
	}
	closed := metas[1]
	closed.Status = storage.SliceClosed
	if err := e.PutSlice(ctx, "ns", closed); err != nil {
		t.Fatal(err)
	}
	if err := e.PutSlice(ctx, "ns2", metas[0]); err != nil {
		t.Fatal(err)
	}
	sl, err := e.Slices(ctx, "ns")
	if err != nil || !slices.Equal(sl, []storage.SliceMeta{metas[0], closed}) {
		t.Fatalf("slices %v %v", sl, err)
	}
	if err := e.DropSlice(ctx, "ns", 0); err != nil {
		t.Fatal(err)
	}
	if sl, _ := e.Slices(ctx, "ns"); !slices.Equal(sl, []storage.SliceMeta{closed}) {
		t.Fatalf("after drop: %v", sl)
	}
	if sl, _ := e.Slices(ctx, "ns2"); len(sl) != 1 {
		t.Fatalf("another namespace's slice table changed: %v", sl)
	}
	if got := refs(0, storage.KindInteger, "n", storage.IndexMatch{Min: -100, Max: 100}); len(got) != 0 {
		t.Fatalf("postings of dropped slice remain: %v", got)
	}
	if got := refs(1000, storage.KindInteger, "n", storage.IndexMatch{Min: -100, Max: 100}); len(got) != 25 {
		t.Fatalf("other slice lost postings: %d", len(got))
	}
}

func TestCancelledScanStopsAndClosedEngineRefuses(t *testing.T) {
	e := open(t)
	p := storage.Partition{TimeSeriesID: "s"}
	var ws []storage.Write
	for i := 0; i < 500; i++ {
		ws = append(ws, storage.Write{Partition: p, Event: storage.Event{TimeSeriesID: "s", Time: int64(i), ID: "e"}})
	}
	if err := e.Apply(context.Background(), &storage.Batch{Namespace: "ns", Writes: ws}, storage.Buffered); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := e.ScanPartition(ctx, "ns", p, storage.TimeRange{Start: 0, End: 1000}, nil, func(storage.Event) bool {
		n++
		if n == 10 {
			cancel()
		}
		return true
	})
	if !errors.Is(err, context.Canceled) || n >= 500 {
		t.Fatalf("cancelled scan: err %v after %d events", err, n)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(context.Background(), &storage.Batch{Namespace: "ns", Writes: ws[:1]}, storage.Durable); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
}

// Re-writing an event merges per item (the API's idempotency key is per item) and its index
// row per field, with one row per event in the engine.
// TestRewriteMergesItemsAndIndexRow: a re-write merges per item and per indexed field, the
// later write winning, whether the two writes come in two batches or in one (the engine
// sorts a batch's rows by key; equal keys must keep their order among many others).
func TestRewriteMergesItemsAndIndexRow(t *testing.T) {
	for _, oneBatch := range []bool{false, true} {
		t.Run(fmt.Sprintf("oneBatch=%v", oneBatch), func(t *testing.T) { testRewriteMerges(t, oneBatch) })
	}
}

func testRewriteMerges(t *testing.T, oneBatch bool) {
	e := open(t)
	ctx := context.Background()
	p := storage.Partition{TimeSeriesID: "s"}
	var pending []storage.Write
	// Other events around it, so the batch has many rows to sort.
	for i := range 40 {
		pending = append(pending, storage.Write{Partition: storage.Partition{TimeSeriesID: fmt.Sprint("r", i%3)},
			Event: storage.Event{TimeSeriesID: fmt.Sprint("r", i%3), Time: int64(i), ID: fmt.Sprint("o", i), Items: []storage.Item{{Key: []byte("a"), Value: []byte("x")}}},
			Index: []storage.IndexEntry{{Field: "a", Kind: storage.KindKeyword, Value: []byte("x"), Raw: []byte("x")}}})
	}
	write := func(items []storage.Item, index []storage.IndexEntry) {
		t.Helper()
		pending = append(pending, storage.Write{Partition: p, Event: storage.Event{TimeSeriesID: "s", Time: 7, ID: "e", Items: items}, Index: index})
		if oneBatch {
			return
		}
		if err := e.Apply(ctx, &storage.Batch{Namespace: "ns", Writes: pending}, storage.Durable); err != nil {
			t.Fatal(err)
		}
		pending = nil
	}
	it := func(k, v string) storage.Item { return storage.Item{Key: []byte(k), Value: []byte(v)} }
	write([]storage.Item{it("b", "1"), it("a", "1")}, []storage.IndexEntry{
		{Field: "a", Kind: storage.KindKeyword, Value: []byte("1"), Raw: []byte("1")},
		{Field: "n", Kind: storage.KindInteger, Int: 5, Raw: []byte("05")},
	})
	write([]storage.Item{it("a", "2"), it("c", "3")}, []storage.IndexEntry{{Field: "a", Kind: storage.KindKeyword, Value: []byte("2"), Raw: []byte("2")}})
	if len(pending) > 0 {
		if err := e.Apply(ctx, &storage.Batch{Namespace: "ns", Writes: pending}, storage.Durable); err != nil {
			t.Fatal(err)
		}
	}
	ev, ok, err := e.GetEvent(ctx, "ns", p, 7, "e")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var got []string
	for _, x := range ev.Items {
		got = append(got, string(x.Key)+"="+string(x.Value))
	}
	if !slices.Equal(got, []string{"a=2", "b=1", "c=3"}) {
		t.Fatalf("merged items %v", got)
	}
	var rows []string
	err = e.ScanIndexRows(ctx, "ns", 0, 0, storage.TimeRange{Start: 0, End: 100}, func(ref storage.Ref, es []storage.IndexEntry) bool {
		if ref.TimeSeriesID != "s" {
			return true
		}
		for _, x := range es {
			rows = append(rows, fmt.Sprintf("%s:%s:%d:%s", x.Field, x.Value, x.Int, x.Raw))
		}
		return true
	})
	if err != nil || !slices.Equal(rows, []string{"a:2:0:2", "n::5:05"}) {
		t.Fatalf("index row %v %v", rows, err)
	}
	var ints []int64
	err = e.ScanIndex(ctx, "ns", storage.IndexPartition{Field: "n", Kind: storage.KindInteger}, storage.IndexMatch{Min: 5, Max: 5}, storage.TimeRange{Start: 0, End: 100}, nil, func(r storage.Ref) bool {
		ints = append(ints, r.Time)
		return true
	})
	if err != nil || !slices.Equal(ints, []int64{7}) {
		t.Fatalf("integer scan %v %v", ints, err)
	}
}

func TestKeyedListMergerResolvesNewestPerKeyInBothDirections(t *testing.T) {
	enc := func(kv ...string) []byte {
		var items []storage.Item
		for i := 0; i+1 < len(kv); i += 2 {
			items = append(items, storage.Item{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return encodeItems(nil, items)
	}
	a, b, c := enc("x", "1", "y", "1"), enc("y", "2", "z", "2"), enc("x", "3")
	want := string(enc("x", "3", "y", "2", "z", "2"))
	older := func() []byte { // Merge(newest).MergeOlder(...)
		m, _ := keyedListMergeOperator.Merge(nil, c)
		_ = m.MergeOlder(b)
		_ = m.MergeOlder(a)
		out, _, err := m.Finish(true)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	newer := func() []byte { // Merge(oldest).MergeNewer(...)
		m, _ := keyedListMergeOperator.Merge(nil, a)
		_ = m.MergeNewer(b)
		_ = m.MergeNewer(c)
		out, _, err := m.Finish(true)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := string(older()); got != want {
		t.Fatalf("MergeOlder: %q, want %q", got, want)
	}
	if got := string(newer()); got != want {
		t.Fatalf("MergeNewer: %q, want %q", got, want)
	}
	if got := string(enc("b", "1", "a", "1", "b", "2")); got != string(enc("a", "1", "b", "2")) {
		t.Fatalf("encodeItems keeps duplicates or order: %q", got)
	}
}

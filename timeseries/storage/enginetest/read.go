package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Events come back newest first across time buckets, event buckets and slices, ties in one
// millisecond by event id, and the items of an event ordered by key bytes.
func testOrdering(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	var events []timeseries.EventRecord
	var want []string
	// 60 events over 36 hours (two slices, many buckets), plus 6 sharing one millisecond.
	for i := 0; i < 60; i++ {
		at := BaseTime.Add(-time.Duration(i) * 37 * time.Minute)
		events = append(events, ev("s1", at, eventID(i), "device", "ios"))
		want = append(want, eventID(i))
	}
	tie := BaseTime.Add(-90 * time.Minute).Add(7 * time.Millisecond)
	tieIDs := []string{"t-f", "t-a", "t-d", "t-b", "t-e", "t-c"}
	for _, id := range tieIDs {
		events = append(events, ev("s1", tie, id, "device", "android"))
	}
	// An event with binary item keys given out of order; one with no items.
	events = append(events, timeseries.EventRecord{TimeSeriesID: "s1", EventTime: ts(BaseTime.Add(-5 * time.Minute)), EventID: "items",
		EventItems: []timeseries.EventItem{
			{EventItemKey: b64("zz"), EventItemValue: b64("3")},
			{EventItemKey: b64("\xff\x00"), EventItemValue: b64("4")},
			{EventItemKey: b64("\x00\x01"), EventItemValue: b64("1")},
			{EventItemKey: b64("a"), EventItemValue: ""},
		}})
	events = append(events, timeseries.EventRecord{TimeSeriesID: "s1", EventTime: ts(BaseTime.Add(-6 * time.Minute)), EventID: "empty"})
	// Another series in the same buckets must not appear.
	events = append(events, ev("s2", BaseTime.Add(-time.Minute), "other", "device", "ios"))
	f.writeSync(events...)

	type stamped struct {
		t  time.Time
		id string
	}
	var all []stamped
	for i := 0; i < 60; i++ {
		all = append(all, stamped{BaseTime.Add(-time.Duration(i) * 37 * time.Minute), eventID(i)})
	}
	for _, id := range tieIDs {
		all = append(all, stamped{tie, id})
	}
	all = append(all, stamped{BaseTime.Add(-5 * time.Minute), "items"}, stamped{BaseTime.Add(-6 * time.Minute), "empty"})
	sort.Slice(all, func(i, j int) bool {
		if !all[i].t.Equal(all[j].t) {
			return all[i].t.After(all[j].t)
		}
		return all[i].id < all[j].id
	})
	want = want[:0]
	for _, s := range all {
		want = append(want, s.id)
	}
	got := f.readAll(timeseries.ReadRequest{TimeSeriesID: "s1", TimeInterval: interval(BaseTime.Add(-48*time.Hour), BaseTime.Add(time.Minute)), PageSize: 500})
	equalIDs(t, "read s1", ids(got), want)
	for _, e := range got {
		switch e.EventID {
		case "items":
			var keys []string
			for _, it := range e.EventItems {
				keys = append(keys, unb64(t, it.EventItemKey)+"="+unb64(t, it.EventItemValue))
			}
			if fmt.Sprint(keys) != fmt.Sprint([]string{"\x00\x01=1", "a=", "zz=3", "\xff\x00=4"}) {
				t.Fatalf("items not in key byte order or altered: %q", keys)
			}
		case "empty":
			if len(e.EventItems) != 0 {
				t.Fatalf("event without items came back with %v", e.EventItems)
			}
		}
	}
	// The interval is half-open [start, end).
	got = f.readAll(timeseries.ReadRequest{TimeSeriesID: "s1", TimeInterval: interval(tie, tie.Add(time.Millisecond))})
	equalIDs(t, "one millisecond", ids(got), []string{"t-a", "t-b", "t-c", "t-d", "t-e", "t-f"})
	got = f.readAll(timeseries.ReadRequest{TimeSeriesID: "s1", TimeInterval: interval(tie.Add(time.Millisecond), tie.Add(2*time.Millisecond))})
	equalIDs(t, "end is exclusive", ids(got), nil)
}

// Writing an event again — a retry, a hedge, concurrent duplicates — never duplicates it; a
// rewrite with a different value keeps the last write.
func testIdempotency(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	var batch []timeseries.EventRecord
	for i := 0; i < 20; i++ {
		batch = append(batch, ev("dev", BaseTime.Add(-time.Duration(i)*time.Minute), eventID(i), "device", "ios", "status", "200"))
	}
	f.writeSync(batch...)
	f.writeSync(batch...) // a retry of the whole batch
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ { // hedges and concurrent duplicates
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(timeseries.WriteRequest{Namespace: Namespace, Events: batch})
			if st, resp := f.svc.Handle(context.Background(), timeseries.OpWriteSync, body); st != 200 {
				errs <- fmt.Errorf("concurrent duplicate write: %d %s", st, resp)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r := timeseries.ReadRequest{TimeSeriesID: "dev", TimeInterval: interval(BaseTime.Add(-time.Hour), BaseTime.Add(time.Minute))}
	got := f.readAll(r)
	want := make([]string, 20)
	for i := range want {
		want[i] = eventID(i)
	}
	equalIDs(t, "after retries and duplicates", ids(got), want)

	// Rewrite one event with a new value, twice in sequence: the last write wins.
	f.writeSync(ev("dev", BaseTime.Add(-3*time.Minute), eventID(3), "device", "android", "status", "500"))
	f.writeSync(ev("dev", BaseTime.Add(-3*time.Minute), eventID(3), "device", "web", "status", "503"))
	got = f.readAll(r)
	equalIDs(t, "after rewrite", ids(got), want)
	items := map[string]string{}
	for _, it := range got[3].EventItems {
		items[unb64(t, it.EventItemKey)] = unb64(t, it.EventItemValue)
	}
	if items["device"] != "web" || items["status"] != "503" || len(items) != 2 {
		t.Fatalf("rewritten event has items %v, want device=web status=503", items)
	}
}

// Async writes are queued and written in batches; closing the service flushes them durably.
func testAsyncFlush(t *testing.T, open Opener) {
	nc := NamespaceConfig()
	namespaces := map[string]timeseries.NamespaceConfig{Namespace: nc}
	eng := open(t, namespaces)
	t.Cleanup(func() { _ = eng.Close() })
	now := func() time.Time { return BaseTime }
	svc, err := timeseries.New(timeseries.Config{Namespaces: namespaces}, eng, timeseries.WithClock(now), timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := 0; i < n; i += 50 {
		var batch []timeseries.EventRecord
		for j := i; j < i+50; j++ {
			batch = append(batch, ev("async", BaseTime.Add(-time.Duration(j)*time.Second), eventID(j), "device", "ios"))
		}
		body, _ := json.Marshal(timeseries.WriteRequest{Namespace: Namespace, Events: batch})
		if st, resp := svc.Handle(context.Background(), timeseries.OpWrite, body); st != 202 {
			t.Fatalf("async write: %d %s", st, resp)
		}
	}
	if err := svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, engine: eng, now: BaseTime}
	f.svc, err = timeseries.New(timeseries.Config{Namespaces: namespaces}, eng, timeseries.WithClock(now), timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	defer f.svc.Close(context.Background())
	got := f.readAll(timeseries.ReadRequest{TimeSeriesID: "async", TimeInterval: interval(BaseTime.Add(-time.Hour), BaseTime.Add(time.Second)), PageSize: 500})
	if len(got) != n {
		t.Fatalf("after close, %d of %d async events are readable", len(got), n)
	}
}

// Following page tokens yields every event exactly once, in order, whatever the page size;
// totalRecordLimit caps the events across pages.
func testPagination(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	var events []timeseries.EventRecord
	var want []string
	for i := 0; i < 250; i++ {
		// Several events per millisecond now and then, spread over 30 hours.
		at := BaseTime.Add(-time.Duration(i/3) * 21 * time.Minute).Add(-time.Duration(i%3) * time.Millisecond * time.Duration(i%2))
		events = append(events, ev("pg", at, eventID(i), "device", "ios"))
	}
	f.writeSync(events...)
	full := f.readAll(timeseries.ReadRequest{TimeSeriesID: "pg", TimeInterval: interval(BaseTime.Add(-40*time.Hour), BaseTime.Add(time.Minute)), PageSize: 500})
	if len(full) != 250 {
		t.Fatalf("full read: %d events, want 250", len(full))
	}
	want = ids(full)
	seen := map[string]bool{}
	for i, e := range full {
		if seen[e.EventID] {
			t.Fatalf("event %s twice in the full read", e.EventID)
		}
		seen[e.EventID] = true
		if i > 0 && full[i-1].EventTime < e.EventTime {
			t.Fatalf("not newest first at %d: %s before %s", i, full[i-1].EventTime, e.EventTime)
		}
	}
	for _, size := range []int{1, 7, 64} {
		got := f.readAll(timeseries.ReadRequest{TimeSeriesID: "pg", TimeInterval: interval(BaseTime.Add(-40*time.Hour), BaseTime.Add(time.Minute)), PageSize: size})
		equalIDs(t, fmt.Sprintf("pages of %d", size), ids(got), want)
	}
	got := f.readAll(timeseries.ReadRequest{TimeSeriesID: "pg", TimeInterval: interval(BaseTime.Add(-40*time.Hour), BaseTime.Add(time.Minute)), PageSize: 20, TotalRecordLimit: 55})
	equalIDs(t, "totalRecordLimit 55", ids(got), want[:55])
}

// eventFilters keep events that have every listed key/value item.
func testFilters(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	var events []timeseries.EventRecord
	var want []string
	devices := []string{"ios", "android", "web"}
	countries := []string{"fr", "de"}
	for i := 0; i < 90; i++ {
		d, c := devices[i%3], countries[i%2]
		events = append(events, ev("flt", BaseTime.Add(-time.Duration(i)*10*time.Minute), eventID(i), "device", d, "country", c))
		if d == "ios" && c == "fr" {
			want = append(want, eventID(i))
		}
	}
	f.writeSync(events...)
	got := f.readAll(timeseries.ReadRequest{
		TimeSeriesID: "flt", TimeInterval: interval(BaseTime.Add(-24*time.Hour), BaseTime.Add(time.Minute)), PageSize: 4,
		EventFilters: []timeseries.EventFilter{
			{MatchEventItemKey: b64("device"), MatchEventItemValue: b64("ios")},
			{MatchEventItemKey: b64("country"), MatchEventItemValue: b64("fr")},
		},
	})
	equalIDs(t, "device=ios AND country=fr", ids(got), want)
}

// blockingEngine makes chosen scans wait for their context, as a slow or partitioned replica
// would, until released.
type blockingEngine struct {
	storage.Engine
	blockPartition func(storage.Partition) bool
	blockIndex     func(storage.IndexPartition) bool
	released       atomic.Bool
}

func (b *blockingEngine) ScanPartition(ctx context.Context, ns string, p storage.Partition, r storage.TimeRange, after *storage.Cursor, fn func(storage.Event) bool) error {
	if !b.released.Load() && b.blockPartition != nil && b.blockPartition(p) {
		<-ctx.Done()
		return ctx.Err()
	}
	return b.Engine.ScanPartition(ctx, ns, p, r, after, fn)
}

func (b *blockingEngine) ScanIndex(ctx context.Context, ns string, ip storage.IndexPartition, m storage.IndexMatch, r storage.TimeRange, after *storage.Ref, fn func(storage.Ref) bool) error {
	if !b.released.Load() && b.blockIndex != nil && b.blockIndex(ip) {
		<-ctx.Done()
		return ctx.Err()
	}
	return b.Engine.ScanIndex(ctx, ns, ip, m, r, after, fn)
}

// A read that reaches the read SLO answers with a gap-free newest-first prefix, partial=true
// and a token; following the token once the engine recovers yields the rest exactly once.
func testPartialRead(t *testing.T, open Opener) {
	slow := BaseTime.Add(-3 * time.Hour).Truncate(time.Hour) // this bucket's scans hang
	blk := &blockingEngine{blockPartition: func(p storage.Partition) bool { return p.Bucket == slow.UnixMilli() }}
	f := newFixture(t, open, func(nc *timeseries.NamespaceConfig) { nc.SLOs.Read.Max = 1500 * time.Millisecond },
		func(e storage.Engine) storage.Engine { blk.Engine = e; return blk })
	var events []timeseries.EventRecord
	for i := 0; i < 60; i++ {
		events = append(events, ev("part", BaseTime.Add(-time.Duration(i)*5*time.Minute), eventID(i), "device", "ios"))
	}
	f.writeSync(events...)
	req := timeseries.ReadRequest{Namespace: Namespace, TimeSeriesID: "part", TimeInterval: interval(BaseTime.Add(-6*time.Hour), BaseTime.Add(time.Minute)), PageSize: 500}
	var resp timeseries.EventsResponse
	f.mustCall(timeseries.OpRead, req, 200, &resp)
	if !resp.Partial || resp.NextPageToken == "" {
		t.Fatalf("read past the SLO: partial=%v token=%q, want partial with a token", resp.Partial, resp.NextPageToken)
	}
	var want []string
	for i := 0; i < 60; i++ {
		want = append(want, eventID(i))
	}
	newer := 0
	for i := 0; i < 60; i++ {
		if !BaseTime.Add(-time.Duration(i) * 5 * time.Minute).Before(slow.Add(time.Hour)) {
			newer++
		}
	}
	equalIDs(t, "partial page", ids(resp.Events), want[:newer])
	blk.released.Store(true)
	req.PageToken = resp.NextPageToken
	rest := f.readAll(req)
	equalIDs(t, "partial page + rest", append(ids(resp.Events), ids(rest)...), want)
}

// A search that reaches the read SLO answers with a gap-free prefix and a token as well.
func testPartialSearch(t *testing.T, open Opener) {
	slow := BaseTime.Add(-2 * time.Hour).Truncate(time.Hour)
	blk := &blockingEngine{blockIndex: func(ip storage.IndexPartition) bool { return ip.Bucket == slow.UnixMilli() }}
	f := newFixture(t, open, func(nc *timeseries.NamespaceConfig) { nc.SLOs.Read.Max = 1500 * time.Millisecond },
		func(e storage.Engine) storage.Engine { blk.Engine = e; return blk })
	var events []timeseries.EventRecord
	for i := 0; i < 40; i++ {
		events = append(events, ev(fmt.Sprintf("s%d", i%3), BaseTime.Add(-time.Duration(i)*7*time.Minute), eventID(i), "device", "ios"))
	}
	f.writeSync(events...)
	req := timeseries.SearchRequest{Namespace: Namespace, TimeInterval: interval(BaseTime.Add(-6*time.Hour), BaseTime.Add(time.Minute)), PageSize: 500,
		SearchQuery: &timeseries.SearchQuery{Equals: &timeseries.EqualsQuery{EventItemKey: b64("device"), EventItemValue: b64("ios")}}}
	var resp timeseries.EventsResponse
	f.mustCall(timeseries.OpSearch, req, 200, &resp)
	if !resp.Partial || resp.NextPageToken == "" {
		t.Fatalf("search past the SLO: partial=%v token=%q", resp.Partial, resp.NextPageToken)
	}
	var want []string
	for i := 0; i < 40; i++ {
		want = append(want, eventID(i))
	}
	blk.released.Store(true)
	req.PageToken = resp.NextPageToken
	rest := f.searchAll(req)
	equalIDs(t, "partial search + rest", append(ids(resp.Events), ids(rest)...), want)
	if len(resp.Events) == 0 || len(resp.Events) == 40 {
		t.Fatalf("partial search returned %d events; want the events newer than the slow bucket", len(resp.Events))
	}
}

package timeseries

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// seedSeries writes n events of series dev1 spread over the 3 hours before baseTime (3 slices,
// 18 time buckets, 4 event buckets), in shuffled order, with a few sharing one millisecond.
// It returns the ids newest first.
func seedSeries(t *testing.T, f *fixture, n int) []string {
	t.Helper()
	type e struct {
		at time.Time
		id string
	}
	rng := rand.New(rand.NewPCG(1, 2))
	all := make([]e, n)
	for i := range all {
		at := baseTime.Add(-time.Duration(rng.Int64N(int64(3*time.Hour/time.Millisecond))) * time.Millisecond)
		if i%10 == 1 {
			at = all[i-1].at // same millisecond: order falls back to event id
		}
		all[i] = e{at.Truncate(time.Millisecond), eventID(i)}
	}
	var recs []EventRecord
	for i, x := range all {
		device := []string{"ios", "android", "web"}[i%3]
		recs = append(recs, ev("dev1", x.at, x.id, "device", device, "status", []string{"200", "404", "500"}[i%3]))
	}
	rng.Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
	f.writeSync(recs...)
	// Another series in the same buckets must never leak into dev1's reads.
	f.writeSync(ev("dev2", baseTime.Add(-time.Minute), "other", "device", "ios"))
	slices.SortFunc(all, func(a, b e) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		if a.id < b.id {
			return -1
		}
		return 1
	})
	out := make([]string, n)
	for i, x := range all {
		out[i] = x.id
	}
	return out
}

func TestReadDescendingAcrossBucketsAndSlicesWithPagination(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	want := seedSeries(t, f, 300)
	for _, pageSize := range []int{1, 7, 100, 500} {
		got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-4*time.Hour), baseTime.Add(time.Second)), PageSize: pageSize})
		if !slices.Equal(ids(got), want) {
			t.Fatalf("pageSize %d: order or completeness wrong:\n got %v\nwant %v", pageSize, ids(got), want)
		}
		for i := 1; i < len(got); i++ {
			if got[i-1].EventTime < got[i].EventTime {
				t.Fatalf("not descending at %d: %s then %s", i, got[i-1].EventTime, got[i].EventTime)
			}
		}
	}
}

func TestReadIntervalIsHalfOpen(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	start := baseTime.Add(-90 * time.Minute)
	end := baseTime.Add(-30 * time.Minute)
	f.writeSync(
		ev("dev1", start.Add(-time.Millisecond), "before"),
		ev("dev1", start, "first"),
		ev("dev1", end.Add(-time.Millisecond), "last"),
		ev("dev1", end, "after"),
	)
	got := ids(f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(start, end)}))
	if !slices.Equal(got, []string{"last", "first"}) {
		t.Fatalf("got %v, want [last first]", got)
	}
}

func TestReadFiltersAndTotalLimit(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	all := seedSeries(t, f, 120)
	iv := interval(baseTime.Add(-4*time.Hour), baseTime.Add(time.Second))
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: 9,
		EventFilters: []EventFilter{{MatchEventItemKey: b64("device"), MatchEventItemValue: b64("android")}, {MatchEventItemKey: b64("status"), MatchEventItemValue: b64("404")}}})
	var want []string
	for _, id := range all {
		i, err := strconv.Atoi(id[1:])
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			want = append(want, id)
		}
	}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("filtered read:\n got %v\nwant %v", ids(got), want)
	}
	none := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv,
		EventFilters: []EventFilter{{MatchEventItemKey: b64("device"), MatchEventItemValue: b64("android")}, {MatchEventItemKey: b64("status"), MatchEventItemValue: b64("200")}}})
	if len(none) != 0 {
		t.Fatalf("contradictory filters matched %d events", len(none))
	}
	limited := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: 7, TotalRecordLimit: 30})
	if !slices.Equal(ids(limited), all[:30]) {
		t.Fatalf("totalRecordLimit 30 gave %d events %v", len(limited), ids(limited))
	}
}

func TestPageTokenIsBoundToItsQuery(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	seedSeries(t, f, 20)
	iv := interval(baseTime.Add(-4*time.Hour), baseTime.Add(time.Second))
	var first EventsResponse
	f.mustCall(OpRead, ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: 5}, 200, &first)
	if first.NextPageToken == "" {
		t.Fatal("expected a next page token")
	}
	st, body := f.call(OpRead, ReadRequest{Namespace: "ns", TimeSeriesID: "dev2", TimeInterval: iv, PageSize: 5, PageToken: first.NextPageToken})
	checkError(t, st, body, 400, "pageToken", -1, "different query")
	// The last page carries no token.
	var last EventsResponse
	f.mustCall(OpRead, ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: 20}, 200, &last)
	if len(last.Events) != 20 || last.NextPageToken != "" {
		t.Fatalf("exact-size page: %d events, token %q; want 20 and none", len(last.Events), last.NextPageToken)
	}
}

func TestReadPartialAtSLOThenResumeWithoutGaps(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.SLOs.Read = SLO{Target: 10 * time.Millisecond, Max: 150 * time.Millisecond}
	cfg.Namespaces["ns"] = ns
	newest := floorTo(baseTime.Add(-time.Millisecond).UnixMilli(), ns.TimePartition.SecondsPerTimeBucket*1000)
	gate := &gateEngine{}
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { gate.Engine = e; return gate })
	want := seedSeries(t, f, 200)
	iv := interval(baseTime.Add(-4*time.Hour), baseTime.Add(time.Second))

	// Every partition older than the newest time bucket hangs past the SLO.
	gate.scanBlock = func(p storage.Partition) bool { return p.Bucket < newest }
	started := time.Now()
	var resp EventsResponse
	f.mustCall(OpRead, ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: 500}, 200, &resp)
	elapsed := time.Since(started)
	if !resp.Partial || resp.NextPageToken == "" {
		t.Fatalf("want a partial page with a token, got partial=%v token=%q", resp.Partial, resp.NextPageToken)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("partial read took %s, SLO max is 150ms", elapsed)
	}
	got := ids(resp.Events)
	if len(got) == 0 || len(got) >= len(want) || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("partial page must be a non-empty newest-first prefix: got %v", got)
	}
	// Once the slowness clears, the token continues exactly where the partial page ended.
	gate.scanBlock = nil
	req := ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: 500, PageToken: resp.NextPageToken}
	rest := ids(f.readAll(req))
	if all := append(got, rest...); !slices.Equal(all, want) {
		t.Fatalf("partial + resumed pages have gaps or repeats: %d+%d events, want %d", len(got), len(rest), len(want))
	}
}

func TestReadResponseJSONShape(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	f.writeSync(ev("dev1", baseTime.Add(-time.Minute), "a", "device", "ios"))
	_, body := f.call(OpRead, ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-time.Hour), baseTime)})
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["events"]; !ok {
		t.Fatalf("no events key in %s", body)
	}
	if _, ok := raw["partial"]; ok {
		t.Fatalf("partial should be omitted when false: %s", body)
	}
}

// TestReadSkewedPartitionNeedsSeveralRounds puts every match of a time bucket in one event
// bucket, so that partition must be scanned beyond its first-round budget.
func TestReadSkewedPartitionNeedsSeveralRounds(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	tp := testNamespace().TimePartition
	bucketStart := time.UnixMilli(floorTo(baseTime.Add(-5*time.Minute).UnixMilli(), tp.SecondsPerTimeBucket*1000)).UTC()
	var recs []EventRecord
	var want []string
	for i := 0; i < 400; i++ {
		at := bucketStart.Add(time.Duration(i) * time.Second)
		id := eventID(i)
		hot := "no"
		if eventBucket(at.UnixMilli(), id, tp.EventBuckets) == 0 {
			hot = "yes"
			want = append(want, id)
		}
		recs = append(recs, ev("dev1", at, id, "hot", hot))
	}
	f.writeSync(recs...)
	slices.Reverse(want)
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", PageSize: 40,
		TimeInterval: interval(bucketStart, bucketStart.Add(time.Hour)),
		EventFilters: []EventFilter{{MatchEventItemKey: b64("hot"), MatchEventItemValue: b64("yes")}}})
	if len(want) < 60 || !slices.Equal(ids(got), want) {
		t.Fatalf("skewed read: got %d events, want %d in order", len(got), len(want))
	}
}

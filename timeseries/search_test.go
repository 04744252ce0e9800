package timeseries

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// searchFixture writes 240 events over 2 hours across 6 series, with device, status, ok and
// country fields, and returns them for computing expected answers.
type sEvent struct {
	at      time.Time
	tsid    string
	id      string
	device  string
	status  int
	ok      bool
	country string
}

func seedSearch(t *testing.T, f *fixture) []sEvent {
	t.Helper()
	var evs []sEvent
	var recs []EventRecord
	for i := 0; i < 240; i++ {
		e := sEvent{
			at:      baseTime.Add(-time.Duration(i*30+i%7) * time.Second),
			tsid:    fmt.Sprintf("dev%d", i%6),
			id:      eventID(i),
			device:  []string{"ios", "android", "web", "tv"}[i%4],
			status:  []int{200, 201, 404, 500, 503}[i%5],
			ok:      i%5 < 2,
			country: []string{"fr", "us", "de"}[i%3],
		}
		evs = append(evs, e)
		recs = append(recs, ev(e.tsid, e.at, e.id, "device", e.device, "status", strconv.Itoa(e.status), "ok", strconv.FormatBool(e.ok), "country", e.country, "note", "unindexed"))
	}
	f.writeSync(recs...)
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].at.Equal(evs[j].at) {
			return evs[i].at.After(evs[j].at)
		}
		if evs[i].tsid != evs[j].tsid {
			return evs[i].tsid < evs[j].tsid
		}
		return evs[i].id < evs[j].id
	})
	return evs
}

func eqQ(field, value string) SearchQuery {
	return SearchQuery{Equals: &EqualsQuery{EventItemKey: b64(field), EventItemValue: b64(value)}}
}

func (f *fixture) searchAll(req SearchRequest) []EventRecord {
	f.t.Helper()
	var out []EventRecord
	for pages := 0; pages < 10_000; pages++ {
		var resp EventsResponse
		f.mustCall(OpSearch, req, 200, &resp)
		if resp.Partial {
			f.t.Fatal("unexpected partial search")
		}
		out = append(out, resp.Events...)
		if resp.NextPageToken == "" {
			return out
		}
		req.PageToken = resp.NextPageToken
	}
	f.t.Fatal("search pagination does not terminate")
	return nil
}

func TestSearchAndOrRangeWithPagination(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	evs := seedSearch(t, f)
	iv := interval(baseTime.Add(-3*time.Hour), baseTime.Add(time.Second))
	i64 := func(v int64) *int64 { return &v }
	cases := []struct {
		name string
		q    SearchQuery
		pred func(sEvent) bool
	}{
		{"equals keyword", eqQ("device", "ios"), func(e sEvent) bool { return e.device == "ios" }},
		{"equals integer", eqQ("status", "404"), func(e sEvent) bool { return e.status == 404 }},
		{"equals boolean", eqQ("ok", "true"), func(e sEvent) bool { return e.ok }},
		{"and", SearchQuery{And: []SearchQuery{eqQ("device", "android"), eqQ("country", "us")}},
			func(e sEvent) bool { return e.device == "android" && e.country == "us" }},
		{"or", SearchQuery{Or: []SearchQuery{eqQ("device", "tv"), eqQ("country", "fr")}},
			func(e sEvent) bool { return e.device == "tv" || e.country == "fr" }},
		{"range", SearchQuery{Range: &RangeQuery{EventItemKey: b64("status"), Gte: i64(400), Lt: i64(503)}},
			func(e sEvent) bool { return e.status >= 400 && e.status < 503 }},
		{"and of or and range", SearchQuery{And: []SearchQuery{
			{Or: []SearchQuery{eqQ("device", "ios"), eqQ("device", "web")}},
			{Range: &RangeQuery{EventItemKey: b64("status"), Gt: i64(200)}},
			eqQ("ok", "false"),
		}}, func(e sEvent) bool { return (e.device == "ios" || e.device == "web") && e.status > 200 && !e.ok }},
		{"disjoint and", SearchQuery{And: []SearchQuery{eqQ("device", "ios"), eqQ("device", "web")}}, func(sEvent) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, e := range evs {
				if c.pred(e) {
					want = append(want, e.id)
				}
			}
			for _, pageSize := range []int{3, 50, 500} {
				q := c.q
				got := f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &q, PageSize: pageSize})
				if !slices.Equal(ids(got), want) {
					t.Fatalf("pageSize %d:\n got %v\nwant %v", pageSize, ids(got), want)
				}
			}
		})
	}
}

func TestSearchIgnoresStalePostingsOfRewrittenEvents(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	at := baseTime.Add(-time.Minute)
	f.writeSync(ev("dev1", at, "x", "device", "ios"))
	f.writeSync(ev("dev1", at, "x", "device", "web")) // same idempotency key, new value: last write wins
	iv := interval(baseTime.Add(-time.Hour), baseTime)
	if got := f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios"))}); len(got) != 0 {
		t.Fatalf("stale posting matched: %v", ids(got))
	}
	if got := f.searchAll(SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "web"))}); len(got) != 1 {
		t.Fatalf("current value: got %d events, want 1", len(got))
	}
}

func ptr[T any](v T) *T { return &v }

func TestDistinctAggregationWithPagination(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	evs := seedSearch(t, f)
	iv := interval(baseTime.Add(-3*time.Hour), baseTime.Add(time.Second))
	q := SearchQuery{Or: []SearchQuery{eqQ("ok", "true"), eqQ("country", "de")}}
	want := map[string]int64{}
	for _, e := range evs {
		if e.ok || e.country == "de" {
			want[strconv.Itoa(e.status)]++
		}
	}
	got := map[string]int64{}
	var order []DistinctValue
	req := AggregateRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &q, AggregationQuery: AggregationQuery{Distinct: &DistinctQuery{EventItemKey: b64("status"), PageSize: 2}}}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("aggregation pagination does not terminate")
		}
		var resp AggregateResponse
		f.mustCall(OpAggregate, req, 200, &resp)
		if len(resp.Distinct) > 2 {
			t.Fatalf("page of %d values, pageSize is 2", len(resp.Distinct))
		}
		for _, d := range resp.Distinct {
			v := unb64(t, d.Value)
			if _, dup := got[v]; dup {
				t.Fatalf("value %s repeated across pages", v)
			}
			got[v] = d.Count
			order = append(order, DistinctValue{Value: v, Count: d.Count})
		}
		if resp.NextPageToken == "" {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("distinct counts = %v, want %v", got, want)
	}
	for i := 1; i < len(order); i++ {
		a, b := order[i-1], order[i]
		if a.Count < b.Count || a.Count == b.Count && a.Value > b.Value {
			t.Fatalf("not sorted by count desc then value: %v", order)
		}
	}
}

func TestDistinctAggregationLimit(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.Limits.MaxDistinctValues = 3
	cfg.Namespaces["ns"] = ns
	f := newFixture(t, cfg, nil)
	seedSearch(t, f)
	st, body := f.call(OpAggregate, AggregateRequest{
		Namespace: "ns", TimeInterval: interval(baseTime.Add(-3*time.Hour), baseTime.Add(time.Second)),
		SearchQuery:      ptr(eqQ("ok", "false")),
		AggregationQuery: AggregationQuery{Distinct: &DistinctQuery{EventItemKey: b64("note")}},
	})
	if st != 200 {
		t.Fatalf("one distinct value must be fine: %d %s", st, body)
	}
	st, body = f.call(OpAggregate, AggregateRequest{
		Namespace: "ns", TimeInterval: interval(baseTime.Add(-3*time.Hour), baseTime.Add(time.Second)),
		SearchQuery:      ptr(eqQ("country", "fr")),
		AggregationQuery: AggregationQuery{Distinct: &DistinctQuery{EventItemKey: b64("status")}},
	})
	checkError(t, st, body, 422, "aggregationQuery.distinct.eventItemKey", -1, "max_distinct_values")
}

func TestSearchPartialAtSLOThenResume(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.SLOs.Read = SLO{Max: 150 * time.Millisecond}
	cfg.Namespaces["ns"] = ns
	gate := &gateEngine{}
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { gate.Engine = e; return gate })
	evs := seedSearch(t, f)
	var want []string
	for _, e := range evs {
		if e.device == "ios" {
			want = append(want, e.id)
		}
	}
	cut := floorTo(baseTime.Add(-30*time.Minute).UnixMilli(), ns.TimePartition.SecondsPerTimeBucket*1000)
	gate.indexBlock = func(ip storage.IndexPartition) bool { return ip.Bucket < cut }
	iv := interval(baseTime.Add(-3*time.Hour), baseTime.Add(time.Second))
	req := SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios")), PageSize: 500}
	var resp EventsResponse
	f.mustCall(OpSearch, req, 200, &resp)
	got := ids(resp.Events)
	if !resp.Partial || resp.NextPageToken == "" || len(got) == 0 || len(got) >= len(want) || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("want a non-empty partial prefix with a token; partial=%v got %d of %d", resp.Partial, len(got), len(want))
	}
	gate.indexBlock = nil
	req.PageToken = resp.NextPageToken
	rest := ids(f.searchAll(req))
	if !slices.Equal(append(got, rest...), want) {
		t.Fatalf("partial + resumed search has gaps or repeats: %d + %d of %d", len(got), len(rest), len(want))
	}
}

package enginetest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
)

// searchData writes 120 events over 30 hours and 6 series with device, country, status and ok
// fields, and returns them newest first (the search order).
func searchData(f *fixture) []timeseries.EventRecord {
	devices := []string{"ios", "android", "web", "tv"}
	countries := []string{"fr", "de", "us"}
	var events []timeseries.EventRecord
	for i := 0; i < 120; i++ {
		at := BaseTime.Add(-time.Duration(i) * 15 * time.Minute)
		status := strconv.Itoa(200 + (i*37)%400)
		ok := strconv.FormatBool(i%4 != 0)
		events = append(events, ev(fmt.Sprintf("s%d", i%6), at, eventID(i),
			"device", devices[i%4], "country", countries[i%3], "status", status, "ok", ok, "note", "x"))
	}
	f.writeSync(events...)
	return events
}

func itemOf(t *testing.T, e timeseries.EventRecord, key string) string {
	for _, it := range e.EventItems {
		if unb64(t, it.EventItemKey) == key {
			return unb64(t, it.EventItemValue)
		}
	}
	return ""
}

func eq(field, value string) timeseries.SearchQuery {
	return timeseries.SearchQuery{Equals: &timeseries.EqualsQuery{EventItemKey: b64(field), EventItemValue: b64(value)}}
}

// Search answers boolean queries over indexed fields across series, newest first, with
// pagination; the expected answer is computed from the written events.
func testSearch(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	events := searchData(f)
	iv := interval(BaseTime.Add(-48*time.Hour), BaseTime.Add(time.Minute))
	for _, c := range []struct {
		name  string
		q     timeseries.SearchQuery
		match func(e timeseries.EventRecord) bool
	}{
		{"keyword", eq("device", "ios"), func(e timeseries.EventRecord) bool { return itemOf(t, e, "device") == "ios" }},
		{"boolean", eq("ok", "false"), func(e timeseries.EventRecord) bool { return itemOf(t, e, "ok") == "false" }},
		{"integer equality", eq("status", "237"), func(e timeseries.EventRecord) bool { return itemOf(t, e, "status") == "237" }},
		{"integer range", timeseries.SearchQuery{Range: &timeseries.RangeQuery{EventItemKey: b64("status"), Gte: i64(500), Lt: i64(600)}},
			func(e timeseries.EventRecord) bool {
				s, _ := strconv.Atoi(itemOf(t, e, "status"))
				return s >= 500 && s < 600
			}},
		{"and-or", timeseries.SearchQuery{And: []timeseries.SearchQuery{
			{Or: []timeseries.SearchQuery{eq("device", "ios"), eq("device", "web")}},
			{Range: &timeseries.RangeQuery{EventItemKey: b64("status"), Gt: i64(300)}},
			eq("country", "fr"),
		}}, func(e timeseries.EventRecord) bool {
			d := itemOf(t, e, "device")
			s, _ := strconv.Atoi(itemOf(t, e, "status"))
			return (d == "ios" || d == "web") && s > 300 && itemOf(t, e, "country") == "fr"
		}},
	} {
		var want []string
		for _, e := range events {
			if c.match(e) {
				want = append(want, e.EventID)
			}
		}
		if len(want) == 0 {
			t.Fatalf("%s: test data matches nothing", c.name)
		}
		for _, size := range []int{3, 500} {
			got := f.searchAll(timeseries.SearchRequest{TimeInterval: iv, SearchQuery: &c.q, PageSize: size})
			equalIDs(t, fmt.Sprintf("%s, pages of %d", c.name, size), ids(got), want)
		}
	}
	// The interval bounds the search: [start, end).
	got := f.searchAll(timeseries.SearchRequest{TimeInterval: interval(BaseTime.Add(-time.Hour), BaseTime), SearchQuery: &timeseries.SearchQuery{Range: &timeseries.RangeQuery{EventItemKey: b64("status"), Gte: i64(0)}}})
	equalIDs(t, "last hour", ids(got), []string{eventID(1), eventID(2), eventID(3), eventID(4)})
}

// An overwritten value no longer matches through the posting of the old value.
func testStalePostings(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	f.writeSync(ev("s", BaseTime.Add(-time.Minute), "a", "device", "ios"), ev("s", BaseTime.Add(-2*time.Minute), "b", "device", "ios"))
	f.writeSync(ev("s", BaseTime.Add(-time.Minute), "a", "device", "android"))
	iv := interval(BaseTime.Add(-time.Hour), BaseTime)
	q := eq("device", "ios")
	equalIDs(t, "device=ios", ids(f.searchAll(timeseries.SearchRequest{TimeInterval: iv, SearchQuery: &q})), []string{"b"})
	q = eq("device", "android")
	equalIDs(t, "device=android", ids(f.searchAll(timeseries.SearchRequest{TimeInterval: iv, SearchQuery: &q})), []string{"a"})
}

// Distinct aggregation counts matching events per value of any item key, sorted by count
// then value, paged; too many values is a 422.
func testAggregation(t *testing.T, open Opener) {
	f := newFixture(t, open, nil, nil)
	events := searchData(f)
	counts := map[string]int64{}
	for _, e := range events {
		if s, _ := strconv.Atoi(itemOf(t, e, "status")); s >= 400 {
			counts[itemOf(t, e, "device")]++
		}
	}
	req := timeseries.AggregateRequest{Namespace: Namespace, TimeInterval: interval(BaseTime.Add(-48*time.Hour), BaseTime.Add(time.Minute)),
		SearchQuery:      &timeseries.SearchQuery{Range: &timeseries.RangeQuery{EventItemKey: b64("status"), Gte: i64(400)}},
		AggregationQuery: timeseries.AggregationQuery{Distinct: &timeseries.DistinctQuery{EventItemKey: b64("device"), PageSize: 3}}}
	var got []timeseries.DistinctValue
	for pages := 0; ; pages++ {
		var resp timeseries.AggregateResponse
		f.mustCall(timeseries.OpAggregate, req, 200, &resp)
		got = append(got, resp.Distinct...)
		if resp.NextPageToken == "" || pages > 10 {
			break
		}
		req.PageToken = resp.NextPageToken
	}
	if len(got) != len(counts) {
		t.Fatalf("distinct devices %v, want counts %v", got, counts)
	}
	for i, d := range got {
		v := unb64(t, d.Value)
		if d.Count != counts[v] {
			t.Fatalf("count of %q = %d, want %d", v, d.Count, counts[v])
		}
		if i > 0 && (got[i-1].Count < d.Count || got[i-1].Count == d.Count && unb64(t, got[i-1].Value) > v) {
			t.Fatalf("not sorted by count desc, value asc: %v", got)
		}
	}
	// An unindexed key can be aggregated; more distinct values than the limit is a 422.
	req.PageToken = ""
	req.SearchQuery = &timeseries.SearchQuery{Range: &timeseries.RangeQuery{EventItemKey: b64("status"), Gte: i64(0)}}
	req.AggregationQuery.Distinct.EventItemKey = b64("note")
	var one timeseries.AggregateResponse
	f.mustCall(timeseries.OpAggregate, req, 200, &one)
	if len(one.Distinct) != 1 || one.Distinct[0].Count != 120 {
		t.Fatalf("distinct note: %+v, want one value counted 120 times", one.Distinct)
	}
	req.AggregationQuery.Distinct.EventItemKey = b64("status") // more than 50 distinct values
	f.mustCall(timeseries.OpAggregate, req, 422, nil)
}

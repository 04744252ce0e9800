package timeseries

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriteSyncThenRead(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	at := baseTime.Add(-time.Minute)
	f.writeSync(ev("dev1", at, "a", "device", "ios", "status", "200"))
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(at, baseTime)})
	if len(got) != 1 {
		t.Fatalf("got %d events, want 1", len(got))
	}
	e := got[0]
	if e.EventID != "a" || e.TimeSeriesID != "dev1" || e.EventTime != ts(at) || len(e.EventItems) != 2 {
		t.Fatalf("unexpected event %+v", e)
	}
	items := map[string]string{}
	for _, it := range e.EventItems {
		items[unb64(t, it.EventItemKey)] = unb64(t, it.EventItemValue)
	}
	if items["device"] != "ios" || items["status"] != "200" {
		t.Fatalf("items = %v", items)
	}
}

func TestIdempotentRetriesAndConcurrentDuplicates(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	var batch []EventRecord
	for i := 0; i < 40; i++ {
		batch = append(batch, ev("dev1", baseTime.Add(-time.Duration(i)*time.Minute), eventID(i), "device", "ios"))
	}
	// Retries of the same batch, then 16 concurrent writers (sync and async, like hedged
	// requests) sending the same events again.
	for r := 0; r < 3; r++ {
		f.writeSync(batch...)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			op, want := OpWriteSync, 200
			if w%2 == 1 {
				op, want = OpWrite, 202
			}
			body, _ := json.Marshal(WriteRequest{Namespace: "ns", Events: batch})
			if st, resp := f.svc.Handle(t.Context(), op, body); st != want {
				errs <- fmt.Sprintf("%s: %d %s", op, st, resp)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	waitQueuesDrained(t, f.svc)
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-2*time.Hour), baseTime.Add(time.Second))})
	if len(got) != len(batch) {
		t.Fatalf("read %d events after duplicate writes, want %d", len(got), len(batch))
	}
	for i, e := range got {
		if e.EventID != eventID(i) {
			t.Fatalf("event %d is %s, want %s", i, e.EventID, eventID(i))
		}
		if len(e.EventItems) != 1 {
			t.Fatalf("event %s has %d items, want 1", e.EventID, len(e.EventItems))
		}
	}
	// The index must not count duplicates either.
	var agg AggregateResponse
	f.mustCall(OpAggregate, AggregateRequest{
		Namespace: "ns", TimeInterval: interval(baseTime.Add(-2*time.Hour), baseTime.Add(time.Second)),
		SearchQuery:      &SearchQuery{Equals: &EqualsQuery{EventItemKey: b64("device"), EventItemValue: b64("ios")}},
		AggregationQuery: AggregationQuery{Distinct: &DistinctQuery{EventItemKey: b64("device")}},
	}, 200, &agg)
	if len(agg.Distinct) != 1 || agg.Distinct[0].Count != int64(len(batch)) {
		t.Fatalf("aggregation after duplicates = %+v, want one value counted %d", agg.Distinct, len(batch))
	}
}

// waitQueuesDrained polls until every async queue is empty (an eventual condition).
func waitQueuesDrained(t *testing.T, s *Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		busy := false
		for _, q := range s.QueueStats() {
			busy = busy || q.Held > 0
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("async queues not drained: %+v", s.QueueStats())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestBadWritesNameFieldAndIndexAndWriteNothing(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	good := ev("dev1", baseTime.Add(-time.Minute), "good", "device", "ios")
	bad := func(mut func(*EventRecord)) []EventRecord {
		e := ev("dev1", baseTime.Add(-2*time.Minute), "bad", "device", "android")
		mut(&e)
		return []EventRecord{good, e}
	}
	tooMany := make([]EventRecord, 51)
	for i := range tooMany {
		tooMany[i] = ev("dev1", baseTime.Add(-time.Minute), eventID(i))
	}
	cases := []struct {
		name      string
		ns        string
		events    []EventRecord
		status    int
		field     string
		eventIdx  int // -1: none
		errSubstr string
	}{
		{"bad base64 value", "ns", bad(func(e *EventRecord) { e.EventItems[0].EventItemValue = "!!" }), 400, "events[1].eventItems[0].eventItemValue", 1, "base64"},
		{"bad base64 key", "ns", bad(func(e *EventRecord) { e.EventItems[0].EventItemKey = "%%%" }), 400, "events[1].eventItems[0].eventItemKey", 1, "base64"},
		{"empty key", "ns", bad(func(e *EventRecord) { e.EventItems[0].EventItemKey = "" }), 400, "events[1].eventItems[0].eventItemKey", 1, "empty"},
		{"bad time", "ns", bad(func(e *EventRecord) { e.EventTime = "yesterday" }), 400, "events[1].eventTime", 1, "RFC 3339"},
		{"missing time", "ns", bad(func(e *EventRecord) { e.EventTime = "" }), 400, "events[1].eventTime", 1, "required"},
		{"sub-millisecond time", "ns", bad(func(e *EventRecord) { e.EventTime = "2026-03-10T11:00:00.1234Z" }), 400, "events[1].eventTime", 1, "sub-millisecond"},
		{"missing event id", "ns", bad(func(e *EventRecord) { e.EventID = "" }), 400, "events[1].eventId", 1, "required"},
		{"missing series id", "ns", bad(func(e *EventRecord) { e.TimeSeriesID = "" }), 400, "events[1].timeSeriesId", 1, "required"},
		{"too long id", "ns", bad(func(e *EventRecord) { e.EventID = strings.Repeat("x", 300) }), 400, "events[1].eventId", 1, "longer"},
		{"older than acceptLimit", "ns", bad(func(e *EventRecord) { e.EventTime = ts(baseTime.Add(-49 * time.Hour)) }), 400, "events[1].eventTime", 1, "acceptLimit"},
		{"too far in the future", "ns", bad(func(e *EventRecord) { e.EventTime = ts(baseTime.Add(2 * time.Minute)) }), 400, "events[1].eventTime", 1, "futureLimit"},
		{"duplicate item key", "ns", bad(func(e *EventRecord) { e.EventItems = append(e.EventItems, e.EventItems[0]) }), 400, "events[1].eventItems[1].eventItemKey", 1, "duplicate"},
		{"integer field not an integer", "ns", bad(func(e *EventRecord) {
			e.EventItems = append(e.EventItems, EventItem{EventItemKey: b64("status"), EventItemValue: b64("OK")})
		}), 400, "events[1].eventItems[1].eventItemValue", 1, "INTEGER"},
		{"boolean field not a boolean", "ns", bad(func(e *EventRecord) {
			e.EventItems = append(e.EventItems, EventItem{EventItemKey: b64("ok"), EventItemValue: b64("maybe")})
		}), 400, "events[1].eventItems[1].eventItemValue", 1, "BOOLEAN"},
		{"item too large", "ns", bad(func(e *EventRecord) { e.EventItems[0].EventItemValue = b64(strings.Repeat("v", 2000)) }), 400, "events[1].eventItems[0]", 1, "limit"},
		{"too many items", "ns", bad(func(e *EventRecord) {
			for i := 0; i < 9; i++ {
				e.EventItems = append(e.EventItems, EventItem{EventItemKey: b64(fmt.Sprint("k", i)), EventItemValue: ""})
			}
		}), 400, "events[1].eventItems", 1, "limit"},
		{"unknown namespace", "nope", []EventRecord{good}, 404, "namespace", -1, "unknown namespace"},
		{"missing namespace", "", []EventRecord{good}, 400, "namespace", -1, "required"},
		{"empty batch", "ns", nil, 400, "events", -1, "at least one"},
		{"batch over the limit", "ns", tooMany, 413, "events", -1, "over the limit of 50"},
	}
	for _, op := range []string{OpWriteSync, OpWrite} {
		for _, c := range cases {
			t.Run(op+"/"+c.name, func(t *testing.T) {
				st, body := f.call(op, WriteRequest{Namespace: c.ns, Events: c.events})
				checkError(t, st, body, c.status, c.field, c.eventIdx, c.errSubstr)
			})
		}
	}
	waitQueuesDrained(t, f.svc)
	// Nothing of any rejected batch was written, not even its valid first event.
	got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: interval(baseTime.Add(-50*time.Hour), baseTime.Add(time.Hour))})
	if len(got) != 0 {
		t.Fatalf("rejected batches left %d events behind: %v", len(got), ids(got))
	}
}

func checkError(t *testing.T, st int, body []byte, status int, field string, eventIdx int, substr string) {
	t.Helper()
	if st != status {
		t.Fatalf("status %d, want %d: %s", st, status, body)
	}
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body is not JSON: %s", body)
	}
	if eb.Field != field {
		t.Errorf("field %q, want %q (%s)", eb.Field, field, eb.Error)
	}
	switch {
	case eventIdx < 0 && eb.EventIndex != nil:
		t.Errorf("eventIndex %d, want none", *eb.EventIndex)
	case eventIdx >= 0 && (eb.EventIndex == nil || *eb.EventIndex != eventIdx):
		t.Errorf("eventIndex %v, want %d", eb.EventIndex, eventIdx)
	}
	if !strings.Contains(eb.Error, substr) {
		t.Errorf("error %q does not mention %q", eb.Error, substr)
	}
}

func TestAcceptLimitFollowsTheClock(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	at := baseTime.Add(-47 * time.Hour)
	f.writeSync(ev("dev1", at, "edge"))
	f.clock.add(2 * time.Hour) // the same event is now 49h old
	st, body := f.call(OpWriteSync, WriteRequest{Namespace: "ns", Events: []EventRecord{ev("dev1", at, "edge2")}})
	checkError(t, st, body, 400, "events[0].eventTime", 0, "acceptLimit")
}

func TestBadRequestsOfEveryOperation(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	iv := interval(baseTime.Add(-time.Hour), baseTime)
	eq := &SearchQuery{Equals: &EqualsQuery{EventItemKey: b64("device"), EventItemValue: b64("ios")}}
	five := int64(5)
	cases := []struct {
		name   string
		op     string
		body   string
		req    any
		status int
		field  string
		substr string
	}{
		{"invalid JSON", OpRead, `{"namespace":`, nil, 400, "body", "invalid JSON"},
		{"unknown JSON field", OpRead, `{"namespace":"ns","limit":3}`, nil, 400, "limit", "unknown field"},
		{"field name in another case", OpRead, `{"Namespace":"ns"}`, nil, 400, "Namespace", "unknown field"},
		{"duplicate field", OpRead, `{"namespace":"ns","namespace":"other"}`, nil, 400, "namespace", "twice"},
		{"invalid UTF-8 in a series id", OpRead, "{\"namespace\":\"ns\",\"timeSeriesId\":\"\xc3\"}", nil, 400, "timeSeriesId", "UTF-8"},
		{"wrong JSON type", OpRead, `{"namespace":"ns","pageSize":"ten"}`, nil, 400, "pageSize", "wrong JSON type"},
		{"unknown operation", "DropEverything", `{}`, nil, 404, "", "unknown operation"},
		{"read unknown namespace", OpRead, "", ReadRequest{Namespace: "x", TimeSeriesID: "d", TimeInterval: iv}, 404, "namespace", "unknown"},
		{"read missing series", OpRead, "", ReadRequest{Namespace: "ns", TimeInterval: iv}, 400, "timeSeriesId", "required"},
		{"read reversed interval", OpRead, "", ReadRequest{Namespace: "ns", TimeSeriesID: "d", TimeInterval: interval(baseTime, baseTime.Add(-time.Hour))}, 400, "timeInterval", "end must be after start"},
		{"read bad start", OpRead, "", ReadRequest{Namespace: "ns", TimeSeriesID: "d", TimeInterval: TimeInterval{Start: "x", End: ts(baseTime)}}, 400, "timeInterval.start", "RFC 3339"},
		{"read page too big", OpRead, "", ReadRequest{Namespace: "ns", TimeSeriesID: "d", TimeInterval: iv, PageSize: 501}, 400, "pageSize", "between 1 and 500"},
		{"read negative total", OpRead, "", ReadRequest{Namespace: "ns", TimeSeriesID: "d", TimeInterval: iv, TotalRecordLimit: -1}, 400, "totalRecordLimit", "negative"},
		{"read bad filter", OpRead, "", ReadRequest{Namespace: "ns", TimeSeriesID: "d", TimeInterval: iv, EventFilters: []EventFilter{{MatchEventItemKey: "@@"}}}, 400, "eventFilters[0].matchEventItemKey", "base64"},
		{"read forged token", OpRead, "", ReadRequest{Namespace: "ns", TimeSeriesID: "d", TimeInterval: iv, PageToken: "not-a-token"}, 400, "pageToken", "not a token"},
		{"search missing query", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: iv}, 400, "searchQuery", "required"},
		{"search unindexed field", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &SearchQuery{Equals: &EqualsQuery{EventItemKey: b64("color"), EventItemValue: b64("red")}}}, 400, "searchQuery.equals.eventItemKey", "not indexed"},
		{"search two operators", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &SearchQuery{Equals: eq.Equals, And: []SearchQuery{*eq}}}, 400, "searchQuery", "exactly one"},
		{"search empty or", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &SearchQuery{Or: []SearchQuery{}}}, 400, "searchQuery", "exactly one"},
		{"search nested bad leaf", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &SearchQuery{And: []SearchQuery{*eq, {Or: []SearchQuery{{Equals: &EqualsQuery{EventItemKey: b64("status"), EventItemValue: b64("abc")}}}}}}}, 400, "searchQuery.and[1].or[0].equals.eventItemValue", "INTEGER"},
		{"search range on keyword", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &SearchQuery{Range: &RangeQuery{EventItemKey: b64("device"), Gte: &five}}}, 400, "searchQuery.range.eventItemKey", "INTEGER"},
		{"search range without bounds", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &SearchQuery{Range: &RangeQuery{EventItemKey: b64("status")}}}, 400, "searchQuery.range", "at least one"},
		{"search reversed interval", OpSearch, "", SearchRequest{Namespace: "ns", TimeInterval: interval(baseTime, baseTime), SearchQuery: eq}, 400, "timeInterval", "end must be after start"},
		{"aggregate missing distinct", OpAggregate, "", AggregateRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: eq}, 400, "aggregationQuery.distinct", "required"},
		{"aggregate bad key", OpAggregate, "", AggregateRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: eq, AggregationQuery: AggregationQuery{Distinct: &DistinctQuery{EventItemKey: "!"}}}, 400, "aggregationQuery.distinct.eventItemKey", "base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			if c.req != nil {
				body, _ = json.Marshal(c.req)
			}
			st, resp := f.svc.Handle(t.Context(), c.op, body)
			checkError(t, st, resp, c.status, c.field, -1, c.substr)
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	s, err := New(testConfig(), f.engine, WithMaxBodyBytes(10), WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	st, _ := s.Handle(t.Context(), OpRead, []byte(`{"namespace":"ns","timeSeriesId":"abc"}`))
	if st != 413 {
		t.Fatalf("status %d, want 413", st)
	}
}

// Issue 10 item 14: an event id with invalid UTF-8 is refused naming the field, rather than
// decoded with U+FFFD so that "a\xff" and "a\xfe" would be one event and one silently lost.
func TestInvalidUTF8IdsAreRefusedNamingTheField(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	for _, op := range []string{OpWrite, OpWriteSync} {
		body := "{\"namespace\":\"ns\",\"events\":[{\"timeSeriesId\":\"d\",\"eventTime\":\"" + ts(baseTime) + "\",\"eventId\":\"ok\"}," +
			"{\"timeSeriesId\":\"d\",\"eventTime\":\"" + ts(baseTime) + "\",\"eventId\":\"a\xff\"}]}"
		st, resp := f.svc.Handle(t.Context(), op, []byte(body))
		checkError(t, st, resp, 400, "events[1].eventId", 1, "UTF-8")
	}
	if got := f.readAll(ReadRequest{Namespace: "ns", TimeSeriesID: "d", TimeInterval: interval(baseTime.Add(-time.Hour), baseTime.Add(time.Second))}); len(got) != 0 {
		t.Fatalf("a rejected batch left %d events", len(got))
	}
}

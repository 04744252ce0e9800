// Package enginetest is the conformance suite every storage.Engine must pass: the behaviours
// the TimeSeries store promises (ordering, idempotency, pagination without gaps or repeats,
// filters, search, aggregation, retention, partial results, bad input), checked through the
// public API of timeseries.Service running on the engine, plus the engine contract itself
// (cursors, index order, slices). Engine packages call Run from a test with an Opener.
package enginetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Opener opens a fresh, empty engine serving the given namespaces. Each call must be isolated
// from data written through engines opened before (a new directory, a new keyspace). The
// suite closes the engine.
type Opener func(t *testing.T, namespaces map[string]timeseries.NamespaceConfig) storage.Engine

// Namespace is the namespace the suite writes to.
const Namespace = "ct"

// BaseTime is the suite's "now": 2026-03-10T12:00:00Z. Slices are days, buckets hours.
var BaseTime = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// NamespaceConfig is the configuration the suite uses: one-day slices of one-hour buckets,
// four event buckets, a small index.
func NamespaceConfig() timeseries.NamespaceConfig {
	return timeseries.NamespaceConfig{
		TimePartition:  timeseries.TimePartition{SecondsPerTimeSlice: 86400, SecondsPerTimeBucket: 3600, EventBuckets: 4},
		QueueBuffering: timeseries.QueueBuffering{Coalesce: 5 * time.Millisecond, BufferCapacity: 10_000, MaxBatchEvents: 200},
		AcceptLimit:    72 * time.Hour,
		FutureLimit:    time.Minute,
		Retention:      timeseries.Retention{CloseAfter: 72 * time.Hour, DeleteAfter: 96 * time.Hour},
		Index: timeseries.Index{FieldMapping: map[string]timeseries.FieldType{
			"device": timeseries.FieldKeyword, "country": timeseries.FieldKeyword,
			"status": timeseries.FieldInteger, "ok": timeseries.FieldBoolean,
		}},
		SLOs:   timeseries.SLOs{Read: timeseries.SLO{Max: 20 * time.Second}, Write: timeseries.SLO{Max: 20 * time.Second}},
		Limits: timeseries.Limits{MaxBatchEvents: 500, MaxEventItems: 8, MaxItemBytes: 1024, MaxPageSize: 500, MaxDistinctValues: 50},
	}
}

// Run runs the whole suite against engines from open.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Ordering", testOrdering},
		{"Idempotency", testIdempotency},
		{"AsyncWritesFlushOnClose", testAsyncFlush},
		{"Pagination", testPagination},
		{"Filters", testFilters},
		{"Search", testSearch},
		{"SearchIgnoresStalePostings", testStalePostings},
		{"Aggregation", testAggregation},
		{"Retention", testRetention},
		{"PartialRead", testPartialRead},
		{"PartialSearch", testPartialSearch},
		{"BadInput", testBadInput},
		{"ContractScanPartition", testContractScanPartition},
		{"ContractScanIndex", testContractScanIndex},
		{"ContractSlicesAndGetEvent", testContractSlices},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// fixture is a Service over a fresh engine with a settable clock.
type fixture struct {
	t      *testing.T
	engine storage.Engine
	svc    *timeseries.Service
	now    time.Time
}

// newFixture opens an engine for the suite's namespace (cfg changes it) and serves it;
// wrap may interpose a fault injector between the service and the engine.
func newFixture(t *testing.T, open Opener, cfg func(*timeseries.NamespaceConfig), wrap func(storage.Engine) storage.Engine) *fixture {
	t.Helper()
	nc := NamespaceConfig()
	if cfg != nil {
		cfg(&nc)
	}
	namespaces := map[string]timeseries.NamespaceConfig{Namespace: nc}
	eng := open(t, namespaces)
	f := &fixture{t: t, engine: eng, now: BaseTime}
	var served storage.Engine = eng
	if wrap != nil {
		served = wrap(eng)
	}
	svc, err := timeseries.New(timeseries.Config{Namespaces: namespaces, ReadFanout: 16}, served,
		timeseries.WithClock(func() time.Time { return f.now }), timeseries.WithoutRetentionLoop(), timeseries.WithLogf(t.Logf))
	if err != nil {
		_ = eng.Close()
		t.Fatal(err)
	}
	f.svc = svc
	t.Cleanup(func() {
		if err := f.svc.Close(context.Background()); err != nil {
			t.Errorf("close service: %v", err)
		}
		if err := eng.Close(); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	return f
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64 in response: %q", s)
	}
	return string(b)
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// ev builds an event record; items alternate key, value.
func ev(tsid string, at time.Time, id string, items ...string) timeseries.EventRecord {
	r := timeseries.EventRecord{TimeSeriesID: tsid, EventTime: ts(at), EventID: id}
	for i := 0; i+1 < len(items); i += 2 {
		r.EventItems = append(r.EventItems, timeseries.EventItem{EventItemKey: b64(items[i]), EventItemValue: b64(items[i+1])})
	}
	return r
}

func interval(start, end time.Time) timeseries.TimeInterval {
	return timeseries.TimeInterval{Start: ts(start), End: ts(end)}
}

func (f *fixture) call(op string, req any) (int, []byte) {
	f.t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.svc.Handle(context.Background(), op, body)
}

func (f *fixture) mustCall(op string, req any, wantStatus int, out any) {
	f.t.Helper()
	st, body := f.call(op, req)
	if st != wantStatus {
		f.t.Fatalf("%s: status %d, want %d: %s", op, st, wantStatus, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			f.t.Fatalf("%s: decode %s: %v", op, body, err)
		}
	}
}

func (f *fixture) writeSync(events ...timeseries.EventRecord) {
	f.t.Helper()
	for len(events) > 0 {
		n := min(len(events), 200)
		var resp timeseries.WriteResponse
		f.mustCall(timeseries.OpWriteSync, timeseries.WriteRequest{Namespace: Namespace, Events: events[:n]}, 200, &resp)
		if resp.Written != n {
			f.t.Fatalf("written %d, want %d", resp.Written, n)
		}
		events = events[n:]
	}
}

// readAll follows page tokens to the end.
func (f *fixture) readAll(req timeseries.ReadRequest) []timeseries.EventRecord {
	f.t.Helper()
	req.Namespace = Namespace
	var out []timeseries.EventRecord
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			f.t.Fatal("pagination does not terminate")
		}
		var resp timeseries.EventsResponse
		f.mustCall(timeseries.OpRead, req, 200, &resp)
		if resp.Partial {
			f.t.Fatal("unexpected partial read")
		}
		if req.PageSize > 0 && len(resp.Events) > req.PageSize {
			f.t.Fatalf("page of %d events, page size %d", len(resp.Events), req.PageSize)
		}
		out = append(out, resp.Events...)
		if resp.NextPageToken == "" {
			return out
		}
		req.PageToken = resp.NextPageToken
	}
}

// searchAll follows page tokens to the end.
func (f *fixture) searchAll(req timeseries.SearchRequest) []timeseries.EventRecord {
	f.t.Helper()
	req.Namespace = Namespace
	var out []timeseries.EventRecord
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			f.t.Fatal("pagination does not terminate")
		}
		var resp timeseries.EventsResponse
		f.mustCall(timeseries.OpSearch, req, 200, &resp)
		if resp.Partial {
			f.t.Fatal("unexpected partial search")
		}
		out = append(out, resp.Events...)
		if resp.NextPageToken == "" {
			return out
		}
		req.PageToken = resp.NextPageToken
	}
}

func ids(evs []timeseries.EventRecord) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

func eventID(i int) string { return fmt.Sprintf("e%05d", i) }

// equalIDs fails the test when got and want differ, showing where.
func equalIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d\n got %v\nwant %v", what, len(got), len(want), clip(got), clip(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d is %q, want %q\n got %v\nwant %v", what, i, got[i], want[i], clip(got), clip(want))
		}
	}
}

func clip(s []string) []string {
	if len(s) > 40 {
		return append(append([]string(nil), s[:40]...), "...")
	}
	return s
}

func i64(v int64) *int64 { return &v }

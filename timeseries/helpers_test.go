package timeseries

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/pebbleengine"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// baseTime is the fixed "now" of most tests: 2026-03-10T12:00:00Z.
var baseTime = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ms.Store(t.UnixMilli())
	return c
}
func (c *clock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) set(t time.Time)     { c.ms.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// testNamespace: 1h slices, 10min buckets, 4 event buckets, small limits for tests.
func testNamespace() NamespaceConfig {
	return NamespaceConfig{
		TimePartition:  TimePartition{SecondsPerTimeSlice: 3600, SecondsPerTimeBucket: 600, EventBuckets: 4},
		QueueBuffering: QueueBuffering{Coalesce: 5 * time.Millisecond, BufferCapacity: 1000, MaxBatchEvents: 100},
		AcceptLimit:    48 * time.Hour,
		FutureLimit:    time.Minute,
		Retention:      Retention{CloseAfter: 48 * time.Hour, DeleteAfter: 72 * time.Hour},
		Index: Index{FieldMapping: map[string]FieldType{
			"device": FieldKeyword, "status": FieldInteger, "ok": FieldBoolean, "country": FieldKeyword,
		}},
		SLOs:   SLOs{Read: SLO{Target: 50 * time.Millisecond, Max: 5 * time.Second}, Write: SLO{Max: 5 * time.Second}},
		Limits: Limits{MaxBatchEvents: 50, MaxEventItems: 8, MaxItemBytes: 1024, MaxPageSize: 500, MaxDistinctValues: 1000},
	}
}

func testConfig() Config {
	return Config{Namespaces: map[string]NamespaceConfig{"ns": testNamespace()}}
}

type fixture struct {
	t      *testing.T
	dir    string
	clock  *clock
	engine storage.Engine
	svc    *Service
}

// newFixture opens a real pebble engine in a temp dir; wrap may interpose a fault injector.
func newFixture(t *testing.T, cfg Config, wrap func(storage.Engine) storage.Engine) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), clock: newClock(baseTime)}
	pe, err := pebbleengine.Open(f.dir, pebbleengine.Options{CacheBytes: 8 << 20, MemTableBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	f.engine = pe
	if wrap != nil {
		f.engine = wrap(pe)
	}
	f.svc, err = New(cfg, f.engine, WithClock(f.clock.now), WithoutRetentionLoop(), WithLogf(t.Logf))
	if err != nil {
		_ = pe.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.svc.Close(context.Background()); err != nil {
			t.Errorf("close service: %v", err)
		}
		if err := pe.Close(); err != nil {
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

func ts(t time.Time) string { return t.UTC().Format(timeLayoutOut) }

// ev builds an event record; items alternate key, value.
func ev(tsid string, at time.Time, id string, items ...string) EventRecord {
	r := EventRecord{TimeSeriesID: tsid, EventTime: ts(at), EventID: id}
	for i := 0; i+1 < len(items); i += 2 {
		r.EventItems = append(r.EventItems, EventItem{EventItemKey: b64(items[i]), EventItemValue: b64(items[i+1])})
	}
	return r
}

// call runs an operation and returns status and raw body.
func (f *fixture) call(op string, req any) (int, []byte) {
	f.t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.svc.Handle(context.Background(), op, body)
}

// mustCall runs an operation, checks the status and decodes the answer into out.
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

func (f *fixture) writeSync(events ...EventRecord) {
	f.t.Helper()
	for len(events) > 0 {
		n := min(len(events), 50)
		f.mustCall(OpWriteSync, WriteRequest{Namespace: "ns", Events: events[:n]}, 200, nil)
		events = events[n:]
	}
}

// readAll follows page tokens to the end and returns every event id in order.
func (f *fixture) readAll(req ReadRequest) []EventRecord {
	f.t.Helper()
	var out []EventRecord
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			f.t.Fatal("pagination does not terminate")
		}
		var resp EventsResponse
		f.mustCall(OpRead, req, 200, &resp)
		if resp.Partial {
			f.t.Fatal("unexpected partial read")
		}
		out = append(out, resp.Events...)
		if resp.NextPageToken == "" {
			return out
		}
		req.PageToken = resp.NextPageToken
	}
}

func ids(evs []EventRecord) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}

func interval(start, end time.Time) TimeInterval { return TimeInterval{Start: ts(start), End: ts(end)} }

// gateEngine blocks chosen calls until released, to hold the async queue full or make a
// partition scan outlive the read SLO.
type gateEngine struct {
	storage.Engine
	applyGate  chan struct{}                        // nil: Apply runs freely
	scanBlock  func(p storage.Partition) bool       // true: ScanPartition waits for ctx
	started    chan struct{}                        // receives once per gated Apply
	indexBlock func(ip storage.IndexPartition) bool // true: ScanIndex waits for ctx
	mu         sync.Mutex
	applies    int
}

func (g *gateEngine) Apply(ctx context.Context, b *storage.Batch, d storage.Durability) error {
	g.mu.Lock()
	g.applies++
	gate := g.applyGate
	g.mu.Unlock()
	if gate != nil && len(b.Writes) > 0 {
		if g.started != nil {
			select {
			case g.started <- struct{}{}:
			default:
			}
		}
		<-gate
	}
	return g.Engine.Apply(ctx, b, d)
}

func (g *gateEngine) ScanPartition(ctx context.Context, ns string, p storage.Partition, r storage.TimeRange, after *storage.Cursor, fn func(storage.Event) bool) error {
	if g.scanBlock != nil && g.scanBlock(p) {
		<-ctx.Done()
		return ctx.Err()
	}
	return g.Engine.ScanPartition(ctx, ns, p, r, after, fn)
}

func (g *gateEngine) ScanIndex(ctx context.Context, ns string, ip storage.IndexPartition, m storage.IndexMatch, r storage.TimeRange, after *storage.Ref, fn func(storage.Ref) bool) error {
	if g.indexBlock != nil && g.indexBlock(ip) {
		<-ctx.Done()
		return ctx.Err()
	}
	return g.Engine.ScanIndex(ctx, ns, ip, m, r, after, fn)
}

func eventID(i int) string { return fmt.Sprintf("e%05d", i) }

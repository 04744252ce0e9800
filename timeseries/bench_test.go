package timeseries

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks of the acceptance figures. Run briefly with:
//
//	go test -run '^$' -bench . -benchtime 2s ./timeseries/
//
// Each reports p50/p99 in ms (or events/s) as custom metrics. TS_BENCH_FANOUT overrides
// read_fanout to compare scatter-gather widths.

func benchService(b *testing.B) (*Service, *clock) {
	b.Helper()
	clk := newClock(time.Now().Truncate(time.Millisecond))
	cfg := DemoConfig()
	if v := os.Getenv("TS_BENCH_FANOUT"); v != "" {
		cfg.ReadFanout, _ = strconv.Atoi(v)
	}
	s, err := Open(b.TempDir(), cfg, WithClock(clk.now), WithoutRetentionLoop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, clk
}

func reportLatencies(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	if testing.Verbose() {
		b.Logf("n=%d slowest %v", len(lat), lat[max(0, len(lat)-8):])
	}
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op") // per-op time is reported by the percentiles instead
}

func demoEvent(tsid string, at time.Time, id string, i int) EventRecord {
	return ev(tsid, at, id, "deviceType", []string{"ios", "android", "web", "tv"}[i%4], "status", strconv.Itoa([]int{200, 404, 500}[i%3]), "payload", "some opaque payload bytes")
}

func mustHandle(b *testing.B, s *Service, op string, req any, want int) []byte {
	body, _ := json.Marshal(req)
	st, resp := s.Handle(context.Background(), op, body)
	if st != want {
		b.Fatalf("%s: %d %s", op, st, resp)
	}
	return resp
}

func BenchmarkSyncWriteBatch10(b *testing.B) {
	s, clk := benchService(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs := make([]EventRecord, 10)
		for j := range evs {
			evs[j] = demoEvent(fmt.Sprint("dev", i%100), clk.now().Add(-time.Duration(i*10+j)*time.Millisecond), fmt.Sprint(i, "-", j), j)
		}
		body, _ := json.Marshal(WriteRequest{Namespace: "demo", Events: evs})
		start := time.Now()
		st, resp := s.Handle(context.Background(), OpWriteSync, body)
		lat = append(lat, time.Since(start))
		if st != 200 {
			b.Fatalf("%d %s", st, resp)
		}
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

func BenchmarkAsyncIngest(b *testing.B) {
	s, clk := benchService(b)
	const batch = 100
	total := max(b.N, batch)
	rejected := 0
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < total; {
		evs := make([]EventRecord, batch)
		for j := range evs {
			n := sent + j
			evs[j] = demoEvent(fmt.Sprint("dev", n%1000), clk.now().Add(-time.Duration(n%86_400_000)*time.Millisecond), strconv.Itoa(n), n)
		}
		body, _ := json.Marshal(WriteRequest{Namespace: "demo", Events: evs})
		switch st, resp := s.Handle(context.Background(), OpWrite, body); st {
		case 202:
			sent += batch
		case 503:
			rejected++
			time.Sleep(time.Millisecond) // back off like a client honouring Retry-After
		default:
			b.Fatalf("%d %s", st, resp)
		}
	}
	for s.QueueStats()["demo"].Held > 0 {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(rejected), "queue-full-retries")
	b.ReportMetric(0, "ns/op")
}

// seedDay writes one series of 10k events over the last day plus 20 other series.
func seedDay(b *testing.B, s *Service, now time.Time) {
	b.Helper()
	var evs []EventRecord
	flush := func() {
		if len(evs) > 0 {
			mustHandle(b, s, OpWriteSync, WriteRequest{Namespace: "demo", Events: evs}, 200)
			evs = evs[:0]
		}
	}
	for i := 0; i < 10_000; i++ {
		evs = append(evs, demoEvent("hot", now.Add(-time.Duration(i)*8640*time.Millisecond), strconv.Itoa(i), i))
		if len(evs) == 1000 {
			flush()
		}
	}
	for i := 0; i < 20_000; i++ {
		evs = append(evs, demoEvent(fmt.Sprint("other", i%20), now.Add(-time.Duration(i)*4320*time.Millisecond), strconv.Itoa(i), i))
		if len(evs) == 1000 {
			flush()
		}
	}
	flush()
}

func BenchmarkPointRead(b *testing.B) {
	s, clk := benchService(b)
	now := clk.now()
	seedDay(b, s, now)
	rng := rand.New(rand.NewPCG(1, 1))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A random one-hour window of the day, first page of 100, newest first.
		end := now.Add(-time.Duration(rng.Int64N(int64(23 * time.Hour)))).Add(time.Millisecond)
		req := ReadRequest{Namespace: "demo", TimeSeriesID: "hot", PageSize: 100, TimeInterval: interval(end.Add(-time.Hour), end)}
		body, _ := json.Marshal(req)
		start := time.Now()
		st, resp := s.Handle(context.Background(), OpRead, body)
		lat = append(lat, time.Since(start))
		if st != 200 {
			b.Fatalf("%d %s", st, resp)
		}
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

func BenchmarkSearch(b *testing.B) {
	s, clk := benchService(b)
	now := clk.now()
	seedDay(b, s, now)
	q := SearchQuery{And: []SearchQuery{
		{Equals: &EqualsQuery{EventItemKey: b64("deviceType"), EventItemValue: b64("ios")}},
		{Range: &RangeQuery{EventItemKey: b64("status"), Gte: ptr(int64(400))}},
	}}
	req := SearchRequest{Namespace: "demo", SearchQuery: &q, PageSize: 100, TimeInterval: interval(now.Add(-24*time.Hour), now.Add(time.Millisecond))}
	body, _ := json.Marshal(req)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		st, resp := s.Handle(context.Background(), OpSearch, body)
		lat = append(lat, time.Since(start))
		if st != 200 {
			b.Fatalf("%d %s", st, resp)
		}
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// BenchmarkSyncWriteBatch10Concurrent runs 8 writers at once: concurrent fsyncs share WAL
// syncs (group commit), so throughput rises while per-request latency stays low.
func BenchmarkSyncWriteBatch10Concurrent(b *testing.B) {
	s, clk := benchService(b)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var seq atomic.Int64
	b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 writers
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(seq.Add(1))
			evs := make([]EventRecord, 10)
			for j := range evs {
				evs[j] = demoEvent(fmt.Sprint("dev", i%100), clk.now().Add(-time.Duration(i*10+j)*time.Millisecond), fmt.Sprint(i, "-", j), j)
			}
			body, _ := json.Marshal(WriteRequest{Namespace: "demo", Events: evs})
			t0 := time.Now()
			st, resp := s.Handle(context.Background(), OpWriteSync, body)
			d := time.Since(t0)
			if st != 200 {
				b.Errorf("%d %s", st, resp)
				return
			}
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(len(lat)*10)/elapsed.Seconds(), "events/s")
	reportLatencies(b, lat)
}

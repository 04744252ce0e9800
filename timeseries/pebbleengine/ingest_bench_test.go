package pebbleengine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// BenchmarkIngestSettled measures what fire-and-forget ingest costs the engine in the end:
// batches of 1000 events (the queue's default) of the tsbench shape (1000 series over a day,
// three items, a keyword and an integer index entry) applied Buffered from two writers (the
// queue's default), then a flush and every compaction it triggers. It reports process CPU per
// event over all of that, so memtable and compaction settings are compared on the work they
// cause rather than on how much of it they defer past the timed window.
//
//	go test -run '^$' -bench BenchmarkIngestSettled -benchtime 1x ./timeseries/pebbleengine/
//
// TS_INGEST_EVENTS overrides the event count (default 500,000), TS_MEMTABLE_MB the memtable
// size (default 32).
func BenchmarkIngestSettled(b *testing.B) {
	events := 500_000
	if v, err := strconv.Atoi(os.Getenv("TS_INGEST_EVENTS")); err == nil && v > 0 {
		events = v
	}
	for i := 0; i < b.N; i++ {
		var o Options
		if v, err := strconv.Atoi(os.Getenv("TS_MEMTABLE_MB")); err == nil {
			o.MemTableBytes = uint64(v) << 20
		}
		e, err := Open(b.TempDir(), o)
		if err != nil {
			b.Fatal(err)
		}
		batches := ingestBatches(events, 1000)
		cpu0, t0 := rusageCPU(), time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := int(next.Add(1)) - 1; j < len(batches); j = int(next.Add(1)) - 1 {
					if err := e.Apply(context.Background(), batches[j], storage.Buffered); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		applied := rusageCPU() - cpu0
		if err := e.db.Flush(); err != nil {
			b.Fatal(err)
		}
		waitCompactionsIdle(e)
		settled := rusageCPU() - cpu0
		m := e.db.Metrics()
		b.ReportMetric(float64(applied.Nanoseconds())/1000/float64(events), "apply-µs/event")
		b.ReportMetric(float64(settled.Nanoseconds())/1000/float64(events), "settled-µs/event")
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "wall-ms")
		b.ReportMetric(float64(m.Compact.Count), "compactions")
		b.ReportMetric(float64(m.Total().BytesCompacted)/float64(events), "compacted-B/event")
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(0, "ns/op")
}

// ingestBatches builds the data set once, outside the timed part.
func ingestBatches(events, per int) []*storage.Batch {
	const day = int64(24 * time.Hour / time.Millisecond)
	now := time.Now().Truncate(24 * time.Hour).UnixMilli()
	devices := []string{"ios", "android", "web", "tv", "car", "watch"}
	statuses := []string{"200", "201", "404", "500", "503"}
	payload := []byte("some opaque payload bytes of a typical event")
	var out []*storage.Batch
	for from := 0; from < events; from += per {
		bt := &storage.Batch{Namespace: "demo"}
		for i := from; i < min(from+per, events); i++ {
			t := now - int64(i)*day/int64(events) - 1
			tsid := "dev" + strconv.Itoa(i%1000)
			id := "e" + strconv.Itoa(i)
			dev, st := []byte(devices[(i*7)%len(devices)]), []byte(statuses[(i*13)%len(statuses)])
			n, _ := strconv.ParseInt(string(st), 10, 64)
			slice := now - day
			bt.Writes = append(bt.Writes, storage.Write{
				Partition: storage.Partition{Slice: slice, TimeSeriesID: tsid, Bucket: slice + (t-slice)/3_600_000*3_600_000, EventBucket: uint16(i % 4)},
				Event: storage.Event{TimeSeriesID: tsid, Time: t, ID: id, Items: []storage.Item{
					{Key: []byte("deviceType"), Value: dev}, {Key: []byte("status"), Value: st}, {Key: []byte("payload"), Value: payload}}},
				Index: []storage.IndexEntry{
					{Field: "deviceType", Kind: storage.KindKeyword, Value: dev, Raw: dev},
					{Field: "status", Kind: storage.KindInteger, Int: n, Raw: st}},
			})
		}
		out = append(out, bt)
	}
	return out
}

func rusageCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitCompactionsIdle polls until no compaction has run for a few consecutive checks (pebble
// schedules the next one as the previous ends, so one idle sample is not enough).
func waitCompactionsIdle(e *Engine) {
	for idle := 0; idle < 5; {
		m := e.db.Metrics()
		if m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkDurableWritersAfterIngest: the engine alone, 8 writers committing fsynced batches
// of 10 events for 3 s right after a bulk ingest (its flush and compactions still running),
// and again once they have finished. The difference is what background compaction costs
// the sync-write tail on this machine.
//
//	go test -run '^$' -bench BenchmarkDurableWritersAfterIngest -benchtime 1x ./timeseries/pebbleengine/
func BenchmarkDurableWritersAfterIngest(b *testing.B) {
	events := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TS_INGEST_EVENTS")); err == nil && v > 0 {
		events = v
	}
	for _, settled := range []bool{false, true} {
		b.Run(fmt.Sprintf("settled=%v", settled), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				e, err := Open(b.TempDir(), Options{})
				if err != nil {
					b.Fatal(err)
				}
				for _, bt := range ingestBatches(events, 1000) {
					if err := e.Apply(context.Background(), bt, storage.Buffered); err != nil {
						b.Fatal(err)
					}
				}
				if settled {
					if err := e.db.Flush(); err != nil {
						b.Fatal(err)
					}
					waitCompactionsIdle(e)
				}
				var statsMu sync.Mutex
				var stats []pebble.BatchCommitStats
				e.onCommit = func(s pebble.BatchCommitStats) {
					statsMu.Lock()
					stats = append(stats, s)
					statsMu.Unlock()
				}
				lat, cpu := durableWriters(b, e, 8, 3*time.Second)
				e.onCommit = nil
				reportSlowestCommits(b, stats)
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(len(lat))/3, "commits/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/commit")
				b.ReportMetric(0, "ns/op")
				if err := e.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// durableWriters runs writers goroutines committing fsynced batches of 10 events for d and
// returns every commit's latency and the process CPU used meanwhile.
func durableWriters(b *testing.B, e *Engine, writers int, d time.Duration) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	cpu0 := rusageCPU()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				bt := ingestBatches(10, 10)[0]
				for j := range bt.Writes {
					bt.Writes[j].Event.ID = fmt.Sprintf("sync-%d-%d-%d", w, i, j)
				}
				t0 := time.Now()
				if err := e.Apply(context.Background(), bt, storage.Durable); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return all, rusageCPU() - cpu0
}

// reportSlowestCommits breaks down the slowest 1 % of commits by pebble's own accounting:
// waiting for the WAL sync, write stalls, WAL rotation, and the rest (applying to the
// memtable and waiting for a CPU), in ms averaged over those commits.
func reportSlowestCommits(b *testing.B, stats []pebble.BatchCommitStats) {
	if len(stats) < 100 {
		return
	}
	slices.SortFunc(stats, func(x, y pebble.BatchCommitStats) int { return int(y.TotalDuration - x.TotalDuration) })
	tail := stats[:len(stats)/100]
	var total, syncWait, stall, rotation time.Duration
	for _, s := range tail {
		total += s.TotalDuration
		syncWait += s.CommitWaitDuration
		stall += s.MemTableWriteStallDuration + s.L0ReadAmpWriteStallDuration
		rotation += s.WALRotationDuration
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(len(tail)) }
	b.ReportMetric(ms(total), "slow1%-total-ms")
	b.ReportMetric(ms(syncWait), "slow1%-syncwait-ms")
	b.ReportMetric(ms(stall), "slow1%-stall-ms")
	b.ReportMetric(ms(rotation), "slow1%-walrotate-ms")
	b.ReportMetric(ms(total-syncWait-stall-rotation), "slow1%-rest-ms")
}

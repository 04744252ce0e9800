package pebbleengine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// BenchmarkApplyDurable10 measures the engine alone: one fsynced batch of 10 events.
// With -warm the WAL has rotated a few times first, so commits overwrite recycled WAL
// files as in a long-running server instead of extending a fresh one.
func BenchmarkApplyDurable10(b *testing.B) {
	for _, warm := range []bool{false, true} {
		b.Run(fmt.Sprintf("warm=%v", warm), func(b *testing.B) {
			e, err := Open(b.TempDir(), Options{MemTableBytes: 4 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			mk := func(i int) *storage.Batch {
				bt := &storage.Batch{Namespace: "ns"}
				for j := 0; j < 10; j++ {
					bt.Writes = append(bt.Writes, storage.Write{Partition: storage.Partition{TimeSeriesID: fmt.Sprint("s", i%100)},
						Event: storage.Event{TimeSeriesID: "s", Time: int64(i*10 + j), ID: "id", Items: []storage.Item{{Key: []byte("k"), Value: make([]byte, 100)}}}})
				}
				return bt
			}
			if warm {
				for i := 0; i < 40_000; i++ { // ~50 MB: several WAL rotations
					if err := e.Apply(context.Background(), mk(i), storage.Buffered); err != nil {
						b.Fatal(err)
					}
				}
				if err := e.db.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bt := mk(i)
				s := time.Now()
				if err := e.Apply(context.Background(), bt, storage.Durable); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(s))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

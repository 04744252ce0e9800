package timeseries

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Issue 15 item 8: queue depth, bytes and lost async events are exported.
func TestCollectorExportsQueueDepthBytesAndLosses(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering = QueueBuffering{Coalesce: time.Millisecond, BufferCapacity: 100, BufferBytes: 1 << 20, Writers: 1, MaxBatchEvents: 100}
	cfg.Namespaces["ns"] = ns
	gate := &gateEngine{applyGate: make(chan struct{}), started: make(chan struct{}, 1)}
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { gate.Engine = e; return gate })
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(7, 0)}, 202, nil)
	<-gate.started
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.svc.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != "ns" {
				t.Fatalf("%s labels %v", mf.GetName(), m.GetLabel())
			}
			got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	st := f.svc.QueueStats()["ns"]
	want := map[string]float64{
		"floodgate_timeseries_queue_events":            7,
		"floodgate_timeseries_queue_bytes":             float64(st.HeldBytes),
		"floodgate_timeseries_queue_capacity_events":   100,
		"floodgate_timeseries_queue_capacity_bytes":    1 << 20,
		"floodgate_timeseries_async_events_lost_total": 0,
	}
	if st.HeldBytes <= 0 || !maps.Equal(got, want) {
		t.Fatalf("metrics %v, want %v", got, want)
	}
	close(gate.applyGate)
	waitQueuesDrained(t, f.svc)
}

// failingEngine refuses every non-empty batch.
type failingEngine struct{ storage.Engine }

func (f failingEngine) Apply(ctx context.Context, b *storage.Batch, d storage.Durability) error {
	if len(b.Writes) > 0 {
		return errors.New("disk on fire")
	}
	return f.Engine.Apply(ctx, b, d)
}

// Acknowledged async events whose write fails for good are counted, not silently dropped.
func TestLostAsyncEventsAreCounted(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.QueueBuffering.Coalesce = time.Millisecond
	cfg.Namespaces["ns"] = ns
	f := newFixture(t, cfg, func(e storage.Engine) storage.Engine { return failingEngine{e} })
	f.mustCall(OpWrite, WriteRequest{Namespace: "ns", Events: batchOf(3, 0)}, 202, nil)
	deadline := time.Now().Add(20 * time.Second)
	for f.svc.QueueStats()["ns"].Lost != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("lost events not counted: %+v", f.svc.QueueStats()["ns"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if q := f.svc.QueueStats()["ns"]; q.Held != 0 || q.HeldBytes != 0 {
		t.Fatalf("a failed batch still holds the queue: %+v", q)
	}
}

package timeseries

import (
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

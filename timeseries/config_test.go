package timeseries

import (
	"strings"
	"testing"
	"time"
)

func TestDemoConfigIsValid(t *testing.T) {
	c := DemoConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Namespaces["demo"]; !ok {
		t.Fatal("demo namespace missing")
	}
}

func TestConfigValidateNamesFieldPaths(t *testing.T) {
	ns := testNamespace()
	ns.TimePartition.SecondsPerTimeSlice = 1000 // not a multiple of 600
	ns.TimePartition.EventBuckets = 0
	ns.Retention.DeleteAfter = ns.Retention.CloseAfter
	ns.Index.FieldMapping["x"] = "FLOAT"
	ns.SLOs.Read.Target = 10 * time.Second
	ns.QueueBuffering.BufferCapacity = -1
	c := Config{Namespaces: map[string]NamespaceConfig{"ns": ns, "bad name!": testNamespace()}}
	c.ApplyDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("expected errors")
	}
	for _, want := range []string{
		"namespaces.ns.time_partition.seconds_per_time_slice: must be a multiple",
		"namespaces.ns.time_partition.event_buckets:",
		"namespaces.ns.retention.delete_after: must be greater than close_after",
		"namespaces.ns.index.field_mapping.x:",
		"namespaces.ns.slos.read.target:",
		"namespaces.ns.queue_buffering.buffer_capacity:",
		"namespaces.bad name!: name must match",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	ns = testNamespace()
	ns.AcceptLimit = 0
	if err := ns.Validate(); err == nil || !strings.Contains(err.Error(), "accept_limit: must be positive") {
		t.Errorf("zero accept_limit: %v", err)
	}
}

func TestReconfigure(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	cfg := testConfig()
	other := testNamespace()
	cfg.Namespaces["other"] = other
	ns := cfg.Namespaces["ns"]
	ns.AcceptLimit = time.Hour
	cfg.Namespaces["ns"] = ns
	if err := f.svc.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	f.mustCall(OpWriteSync, WriteRequest{Namespace: "other", Events: []EventRecord{ev("d", baseTime, "a")}}, 200, nil)
	st, body := f.call(OpWriteSync, WriteRequest{Namespace: "ns", Events: []EventRecord{ev("d", baseTime.Add(-2*time.Hour), "a")}})
	checkError(t, st, body, 400, "events[0].eventTime", 0, "acceptLimit")
	// Removing a namespace stops serving it.
	if err := f.svc.Reconfigure(testConfig()); err != nil {
		t.Fatal(err)
	}
	st, body = f.call(OpWrite, WriteRequest{Namespace: "other", Events: []EventRecord{ev("d", baseTime, "a")}})
	checkError(t, st, body, 404, "namespace", -1, "unknown namespace")
}

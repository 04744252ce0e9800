package timeseries

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigYAMLKeepsKeyCase(t *testing.T) {
	cfg, err := ParseConfigYAML([]byte(`
namespaces:
  Demo:
    time_partition: {seconds_per_time_slice: 86400, seconds_per_time_bucket: 3600, event_buckets: 4}
    accept_limit: 24h
    retention: {close_after: 24h, delete_after: 48h}
    slos: {read: {target: 20ms, max: 300ms}}
    index:
      field_mapping: {deviceType: KEYWORD, durationMs: INTEGER}
`))
	if err != nil {
		t.Fatal(err)
	}
	ns, ok := cfg.Namespaces["Demo"]
	if !ok {
		t.Fatalf("namespace name lost its case: %v", cfg.Namespaces)
	}
	if ns.Index.FieldMapping["deviceType"] != FieldKeyword || ns.Index.FieldMapping["durationMs"] != FieldInteger {
		t.Fatalf("field mapping lost its case: %v", ns.Index.FieldMapping)
	}
	if ns.SLOs.Read.Max != 300*time.Millisecond || ns.QueueBuffering.BufferCapacity != 10_000 {
		t.Fatalf("durations or defaults wrong: %+v", ns)
	}
	if _, err := ParseConfigYAML([]byte("namespaces:\n  x:\n    retention: {close_after: soon}\n")); err == nil || !strings.Contains(err.Error(), "close_after") {
		t.Fatalf("bad duration: %v", err)
	}
}

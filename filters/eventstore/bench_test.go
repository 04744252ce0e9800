package eventstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
)

// BenchmarkPeekNamespace measures the allowlist's cost on a full batch
// (1000 events), the worst case since the whole body is scanned.
func BenchmarkPeekNamespace(b *testing.B) {
	at := time.Now().Truncate(time.Millisecond)
	req := timeseries.WriteRequest{Namespace: "demo"}
	for i := range 1000 {
		req.Events = append(req.Events, event("device-42", "event-"+string(rune('a'+i%26)), at, "deviceType", "ios", "country", "fr", "status", "500"))
	}
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if ns, ok := peekNamespace(body); !ok || ns != "demo" {
			b.Fatal(ns, ok)
		}
	}
}

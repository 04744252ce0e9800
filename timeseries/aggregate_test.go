package timeseries

import (
	"context"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// countingEngine counts point reads.
type countingEngine struct {
	storage.Engine
	gets atomic.Int64
}

func (c *countingEngine) GetEvent(ctx context.Context, ns string, p storage.Partition, t int64, id string) (storage.Event, bool, error) {
	c.gets.Add(1)
	return c.Engine.GetEvent(ctx, ns, p, t, id)
}

// Issue 15 item 9: a distinct count over an indexed field comes from the index rows with no
// point read per event, and agrees with counting the stored events one by one, including
// events whose indexed value was overwritten (stale postings must not count).
func TestDistinctOverIndexedFieldNeedsNoPointReads(t *testing.T) {
	counter := &countingEngine{}
	f := newFixture(t, testConfig(), func(e storage.Engine) storage.Engine { counter.Engine = e; return counter })
	var recs []EventRecord
	want := map[string]int64{}
	for i := 0; i < 300; i++ {
		device := []string{"ios", "android", "web"}[i%3]
		status := fmt.Sprint(200 + 100*(i%4))
		recs = append(recs, ev(fmt.Sprintf("dev%d", i%7), baseTime.Add(-time.Duration(i)*17*time.Second), eventID(i), "device", device, "status", status, "note", "n"+fmt.Sprint(i%2)))
	}
	f.writeSync(recs...)
	// Re-write some events with another status: the old status posting remains, the row wins.
	for i := 0; i < 300; i += 10 {
		r := ev(fmt.Sprintf("dev%d", i%7), baseTime.Add(-time.Duration(i)*17*time.Second), eventID(i), "status", "999")
		f.writeSync(r)
	}
	for i := 0; i < 300; i++ {
		status := fmt.Sprint(200 + 100*(i%4))
		if i%10 == 0 {
			status = "999"
		}
		if status != "200" && i%3 != 2 { // query: status >= 300 AND device != web (ios OR android)
			want[status]++
		}
	}
	q := SearchQuery{And: []SearchQuery{
		{Range: &RangeQuery{EventItemKey: b64("status"), Gte: ptr(int64(300))}},
		{Or: []SearchQuery{eqQ("device", "ios"), eqQ("device", "android")}},
	}}
	iv := interval(baseTime.Add(-3*time.Hour), baseTime.Add(time.Second))
	aggregate := func(key string) map[string]int64 {
		var resp AggregateResponse
		f.mustCall(OpAggregate, AggregateRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: &q,
			AggregationQuery: AggregationQuery{Distinct: &DistinctQuery{EventItemKey: b64(key), PageSize: 100}}}, 200, &resp)
		if resp.Partial || resp.NextPageToken != "" {
			t.Fatalf("partial or paged: %+v", resp)
		}
		out := map[string]int64{}
		for _, d := range resp.Distinct {
			out[unb64(t, d.Value)] = d.Count
		}
		return out
	}
	counter.gets.Store(0)
	if got := aggregate("status"); !maps.Equal(got, want) {
		t.Fatalf("distinct status from index rows = %v, want %v", got, want)
	}
	if n := counter.gets.Load(); n != 0 {
		t.Fatalf("indexed distinct made %d point reads, want 0", n)
	}
	// An unindexed key still counts correctly, loading the matching events.
	notes := aggregate("note")
	var total, wantTotal int64
	for _, n := range notes {
		total += n
	}
	for _, n := range want {
		wantTotal += n
	}
	if total != wantTotal || counter.gets.Load() == 0 {
		t.Fatalf("unindexed distinct counted %d of %d (point reads %d)", total, wantTotal, counter.gets.Load())
	}
}

package timeseries

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// toRecord is the reflection path's form of an event, the reference appendJSON must match.
func toRecord(ev storage.Event) EventRecord {
	r := EventRecord{TimeSeriesID: ev.TimeSeriesID, EventTime: formatTime(ev.Time), EventID: ev.ID, EventItems: make([]EventItem, 0, len(ev.Items))}
	for _, it := range ev.Items {
		r.EventItems = append(r.EventItems, EventItem{
			EventItemKey:   base64.StdEncoding.EncodeToString(it.Key),
			EventItemValue: base64.StdEncoding.EncodeToString(it.Value),
		})
	}
	return r
}

func TestEventsPageJSONMatchesReflection(t *testing.T) {
	awkward := []string{"", "plain", `quote"back\slash`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f",
		"\x00\x01\x1f\x7f", "line\u2028para\u2029", "ünïcødé 日本語 🎉", "bad\xffutf8\xc3", "\xe2\x80"}
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func() string { return awkward[rng.IntN(len(awkward))] }
	for round := 0; round < 200; round++ {
		page := &eventsPage{partial: round%3 == 0}
		if round%2 == 0 {
			page.next = pick() + "tok"
		}
		for e := 0; e < rng.IntN(5); e++ {
			ev := storage.Event{TimeSeriesID: pick(), ID: pick(), Time: rng.Int64N(4_000_000_000_000) - 1_000_000_000_000}
			for i := 0; i < rng.IntN(4); i++ {
				k, v := make([]byte, rng.IntN(20)), make([]byte, rng.IntN(40))
				for j := range k {
					k[j] = byte(rng.Uint32())
				}
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				ev.Items = append(ev.Items, storage.Item{Key: k, Value: v})
			}
			page.events = append(page.events, ev)
		}
		want := EventsResponse{Events: []EventRecord{}, NextPageToken: page.next, Partial: page.partial}
		for _, ev := range page.events {
			want.Events = append(want.Events, toRecord(ev))
		}
		wantJSON, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalAnswer(page)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantJSON) {
			t.Fatalf("round %d:\n got %s\nwant %s", round, got, wantJSON)
		}
	}
}

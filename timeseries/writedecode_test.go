package timeseries

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// FuzzWriteDecodeFastMatchesStrict: whatever body the fast write decoder accepts, the strict
// decoder accepts too, with the same result; so the fast path changes no answer. Seeds cover
// what it must hand over (escapes, non-ASCII, unknown and repeated members, null, trailing
// data) and what it should take. Explore with
//
//	go test -run '^$' -fuzz FuzzWriteDecodeFastMatchesStrict -fuzztime 60s ./timeseries/
func FuzzWriteDecodeFastMatchesStrict(f *testing.F) {
	for _, s := range []string{
		`{"namespace":"ns","events":[{"timeSeriesId":"d","eventTime":"2026-03-10T11:00:00.123Z","eventId":"e","eventItems":[{"eventItemKey":"ZGV2aWNl","eventItemValue":"aW9z"}]}]}`,
		` { "events" : [ { "eventItems" : [ { "eventItemValue" : "aW9z" , "eventItemKey" : "ZGV2aWNl" } , {} ] , "eventId" : "e" } , {} ] , "namespace" : "ns" } `,
		`{"namespace":"ns","events":[]}`, `{"namespace":"ns","events":[{"eventItems":[]}]}`, `{}`,
		`{"namespace":"ns","events":null}`, `{"namespace":"ns","events":[{"eventItems":null}]}`,
		`{"namespace":"ns","namespace":"x"}`, `{"namespace":"ns","events":[{"eventId":"a","eventId":"b"}]}`,
		`{"Namespace":"ns"}`, `{"namespace":"n\u0073"}`, `{"namespace":"a\/b"}`, "{\"namespace\":\"\xff\"}",
		"{\"namespace\":\"é\"}", `{"namespace":"ns"} x`, `{"namespace":"ns"}{}`, `{"namespace":1}`,
		`{"namespace":"ns","events":[{"eventItems":[{"eventItemKey":"a","extra":1}]}]}`, `[]`, `null`, ``, `{"namespace":"ns",}`,
		`{"namespace":"ns","events":[{},]}`, "{\"namespace\":\"a\tb\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast WriteRequest
		if !decodeWriteFast(body, &fast) {
			if !reflect.DeepEqual(fast, WriteRequest{}) {
				t.Fatalf("fast decoder refused %q but left %+v", body, fast)
			}
			return
		}
		var strict WriteRequest
		if err := strictUnmarshal(body, &strict); err != nil {
			t.Fatalf("fast decoder accepted %q, strict refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("decoders differ on %q:\nfast   %#v\nstrict %#v", body, fast, strict)
		}
	})
}

// TestWriteDecodeFastTakesTheCommonShape: the shape clients send (and the benchmark posts) is
// taken by the fast path, so the speed-up is not silently lost.
func TestWriteDecodeFastTakesTheCommonShape(t *testing.T) {
	for _, s := range []string{
		`{"namespace":"ns","events":[{"timeSeriesId":"d","eventTime":"2026-03-10T11:00:00.123Z","eventId":"e","eventItems":[{"eventItemKey":"ZGV2aWNl","eventItemValue":"aW9z"},{"eventItemKey":"c3RhdHVz","eventItemValue":"NTAw"}]}]}`,
		"{\n  \"namespace\": \"ns\",\n  \"events\": [\n    {\"timeSeriesId\": \"d\", \"eventTime\": \"2026-03-10T11:00:00Z\", \"eventId\": \"9a1d\", \"eventItems\": []}\n  ]\n}\n",
	} {
		var req WriteRequest
		if !decodeWriteFast([]byte(s), &req) {
			t.Fatalf("fast decoder refused %q", s)
		}
	}
}

// BenchmarkDecodeWriteBody compares the fast and the strict decoder on a 500-event body of
// the benchmark's shape, in ns per event:
//
//	go test -run '^$' -bench BenchmarkDecodeWriteBody -benchmem ./timeseries/
func BenchmarkDecodeWriteBody(b *testing.B) {
	evs := make([]EventRecord, 500)
	for i := range evs {
		evs[i] = demoEvent(fmt.Sprint("dev", i%1000), baseTime.Add(-time.Duration(i)*time.Millisecond), strconv.Itoa(i), i)
	}
	body, err := json.Marshal(WriteRequest{Namespace: "demo", Events: evs})
	if err != nil {
		b.Fatal(err)
	}
	for _, fast := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req WriteRequest
				if fast {
					if !decodeWriteFast(body, &req) {
						b.Fatal("fast decoder refused the body")
					}
				} else if err := strictUnmarshal(body, &req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
		})
	}
}

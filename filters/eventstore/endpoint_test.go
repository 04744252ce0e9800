package eventstore

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/timeseries"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func event(tsid, id string, at time.Time, kv ...string) timeseries.EventRecord {
	e := timeseries.EventRecord{TimeSeriesID: tsid, EventID: id, EventTime: at.UTC().Format("2006-01-02T15:04:05.000Z07:00")}
	for i := 0; i+1 < len(kv); i += 2 {
		e.EventItems = append(e.EventItems, timeseries.EventItem{EventItemKey: b64(kv[i]), EventItemValue: b64(kv[i+1])})
	}
	return e
}

func readAll(t *testing.T, cl *http.Client, base, ns, tsid string) timeseries.EventsResponse {
	t.Helper()
	now := time.Now().UTC()
	r := post(t, cl, base+"/ts/"+timeseries.OpRead, timeseries.ReadRequest{
		Namespace: ns, TimeSeriesID: tsid,
		TimeInterval: timeseries.TimeInterval{Start: now.Add(-time.Hour).Format(time.RFC3339), End: now.Add(time.Hour).Format(time.RFC3339)},
	})
	if r.status != http.StatusOK || r.category() != string(filters.CategorySuccess) {
		t.Fatalf("read: %d %s %s", r.status, r.category(), r.body)
	}
	var out timeseries.EventsResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Both body paths: the gateway's streamed bodies and fully buffered ones.
func bothModes(t *testing.T, fn func(t *testing.T, streaming bool)) {
	for _, streaming := range []bool{true, false} {
		t.Run(fmt.Sprintf("streaming=%v", streaming), func(t *testing.T) { fn(t, streaming) })
	}
}

func TestWriteSyncThenRead(t *testing.T) {
	bothModes(t, func(t *testing.T, streaming bool) {
		base, _ := gateway(t, Options{}, streaming)
		cl := newClient(t)
		at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		// A value large enough that the body exceeds the 1 KiB read-ahead
		// and really streams.
		big := strings.Repeat("x", 4<<10)
		r := post(t, cl, base+"/ts/"+timeseries.OpWriteSync, timeseries.WriteRequest{
			Namespace: "demo",
			Events: []timeseries.EventRecord{
				event("device-42", "e1", at, "deviceType", "ios", "note", big),
				event("device-42", "e2", at.Add(time.Second), "deviceType", "android"),
			},
		})
		if r.status != http.StatusOK || r.category() != "success" || string(r.body) != `{"written":2}` {
			t.Fatalf("write: %d %q %s", r.status, r.category(), r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		got := readAll(t, cl, base, "demo", "device-42")
		if len(got.Events) != 2 || got.Events[0].EventID != "e2" || got.Events[1].EventID != "e1" {
			t.Fatalf("read back %+v, want e2 then e1", got.Events)
		}
		items := got.Events[1].EventItems
		want := map[string]string{"deviceType": "ios", "note": big}
		if len(items) != len(want) {
			t.Fatalf("items %+v", items)
		}
		for _, it := range items {
			k, err1 := base64.StdEncoding.DecodeString(it.EventItemKey)
			v, err2 := base64.StdEncoding.DecodeString(it.EventItemValue)
			if err1 != nil || err2 != nil || want[string(k)] != string(v) {
				t.Errorf("item %q=%.20q does not match what was written", k, v)
			}
		}
	})
}

func TestAsyncWriteAccepted(t *testing.T) {
	base, _ := gateway(t, Options{}, true)
	cl := newClient(t)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	r := post(t, cl, base+"/ts/"+timeseries.OpWrite, timeseries.WriteRequest{
		Namespace: "demo", Events: []timeseries.EventRecord{event("device-7", "a1", at, "deviceType", "ios")},
	})
	if r.status != http.StatusAccepted || r.category() != "success" || string(r.body) != `{"accepted":1}` {
		t.Fatalf("async write: %d %q %s", r.status, r.category(), r.body)
	}
	// The demo queue coalesces for 10ms; the event becomes readable soon.
	deadline := time.Now().Add(5 * time.Second)
	for len(readAll(t, cl, base, "demo", "device-7").Events) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("async event never became readable")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	base, _ := gateway(t, Options{}, true)
	r := do(t, newClient(t), http.MethodGet, base+"/ts/"+timeseries.OpRead, nil)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow=%q", r.status, r.header.Get("Allow"))
	}
	if r.category() != string(filters.CategoryClientError) {
		t.Errorf("category %q", r.category())
	}
	if b := r.errorJSON(t); b.Reason != "method_not_allowed" {
		t.Errorf("reason %q", b.Reason)
	}
}

func TestUnknownOperation(t *testing.T) {
	base, _ := gateway(t, Options{}, true)
	r := do(t, newClient(t), http.MethodPost, base+"/ts/DeleteEverything", strings.NewReader(`{}`))
	if r.status != http.StatusNotFound || r.category() != string(filters.CategoryClientError) {
		t.Fatalf("unknown op: %d %q", r.status, r.category())
	}
	b := r.errorJSON(t)
	if !slices.Equal(b.Operations, timeseries.Operations()) || !strings.Contains(b.Error, "DeleteEverything") {
		t.Errorf("body %s should name the operation and list %v", r.body, timeseries.Operations())
	}
}

func TestNamespaceAllowlist(t *testing.T) {
	base, _ := gateway(t, Options{Namespaces: []string{"demo", "tiny"}}, true)
	cl := newClient(t)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	ev := []timeseries.EventRecord{event("d", "e", at, "deviceType", "ios")}

	r := post(t, cl, base+"/ts/"+timeseries.OpWriteSync, timeseries.WriteRequest{Namespace: "secret", Events: ev})
	if r.status != http.StatusForbidden || r.category() != string(filters.CategoryClientError) {
		t.Fatalf("secret: %d %q %s", r.status, r.category(), r.body)
	}
	if b := r.errorJSON(t); b.Namespace != "secret" || b.Field != "namespace" || !strings.Contains(b.Error, `"secret"`) {
		t.Errorf("403 body %s should name the namespace", r.body)
	}

	// A body that says "demo" first and something else later must never
	// reach another namespace: the store refuses duplicate and case-folded
	// names (400), and the allowlist reads names by the same rules.
	evJSON, _ := json.Marshal(ev)
	for _, body := range []string{
		`{"namespace":"demo","events":` + string(evJSON) + `,"namespace":"secret"}`,
		`{"namespace":"demo","events":` + string(evJSON) + `,"NameSpace":"secret"}`,
		`{"namespace":"secret","events":` + string(evJSON) + `,"namespace":null}`,
	} {
		r := do(t, cl, http.MethodPost, base+"/ts/"+timeseries.OpWriteSync, strings.NewReader(body))
		if r.status != http.StatusBadRequest && r.status != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 400 or 403", body, r.status, r.body)
		}
	}
	if got := readAll(t, cl, base, "demo", "d"); len(got.Events) != 0 {
		t.Errorf("refused writes left %d events", len(got.Events))
	}

	r = post(t, cl, base+"/ts/"+timeseries.OpWriteSync, timeseries.WriteRequest{Namespace: "demo", Events: ev})
	if r.status != http.StatusOK {
		t.Fatalf("demo is allowed: %d %s", r.status, r.body)
	}
}

func TestBodyTooLarge(t *testing.T) {
	bothModes(t, func(t *testing.T, streaming bool) {
		const limit = 2 << 10
		base, _ := gateway(t, Options{MaxBodySize: limit}, streaming)
		cl := newClient(t)
		body := `{"namespace":"demo","events":[],"pad":"` + strings.Repeat("p", limit) + `"}`
		cases := map[string]io.Reader{
			"content-length": strings.NewReader(body),
			// No length: net/http sends it chunked, so only the reader's
			// limit can catch it.
			"chunked": io.MultiReader(strings.NewReader(body)),
		}
		for name, rd := range cases {
			r := do(t, cl, http.MethodPost, base+"/ts/"+timeseries.OpWriteSync, rd)
			if r.status != http.StatusRequestEntityTooLarge || r.category() != string(filters.CategoryRequestTooLarge) {
				t.Errorf("%s: %d %q %s", name, r.status, r.category(), r.body)
				continue
			}
			if b := r.errorJSON(t); b.Reason != "too_large" {
				t.Errorf("%s: reason %q", name, b.Reason)
			}
		}
		// Exactly at the limit is accepted (and reaches the store, which
		// refuses the unknown field).
		atLimit := `{"namespace":"demo","events":[],"pad":"` + strings.Repeat("p", limit-len(`{"namespace":"demo","events":[],"pad":""}`)) + `"}`
		r := do(t, cl, http.MethodPost, base+"/ts/"+timeseries.OpWriteSync, io.MultiReader(strings.NewReader(atLimit)))
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "pad") {
			t.Errorf("body at the limit: %d %s, want the store's 400 about pad", r.status, r.body)
		}
	})
}

func TestMalformedJSON(t *testing.T) {
	base, _ := gateway(t, Options{Namespaces: []string{"demo"}}, true)
	cl := newClient(t)
	r := do(t, cl, http.MethodPost, base+"/ts/"+timeseries.OpWriteSync, strings.NewReader(`{"namespace":"demo","events":[`))
	if r.status != http.StatusBadRequest || r.category() != string(filters.CategoryClientError) {
		t.Fatalf("truncated JSON: %d %q %s", r.status, r.category(), r.body)
	}
	if b := r.errorJSON(t); b.Field != "body" {
		t.Errorf("field %q, want body", b.Field)
	}
	r = do(t, cl, http.MethodPost, base+"/ts/"+timeseries.OpWriteSync, strings.NewReader(`{"namespace":"demo","events":{}}`))
	if r.status != http.StatusBadRequest {
		t.Fatalf("wrong type: %d %s", r.status, r.body)
	}
	if b := r.errorJSON(t); b.Field != "events" {
		t.Errorf("field %q, want events (%s)", b.Field, r.body)
	}
}

func TestQueueFullIsStoreBusy(t *testing.T) {
	base, _ := gateway(t, Options{}, true)
	cl := newClient(t)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	r := post(t, cl, base+"/ts/"+timeseries.OpWrite, timeseries.WriteRequest{Namespace: "tiny", Events: []timeseries.EventRecord{
		event("s", "1", at, "deviceType", "ios"), event("s", "2", at, "deviceType", "ios"),
	}})
	if r.status != http.StatusAccepted {
		t.Fatalf("filling the queue: %d %s", r.status, r.body)
	}
	r = post(t, cl, base+"/ts/"+timeseries.OpWrite, timeseries.WriteRequest{Namespace: "tiny", Events: []timeseries.EventRecord{
		event("s", "3", at, "deviceType", "ios"),
	}})
	if r.status != http.StatusServiceUnavailable || r.category() != string(CategoryStoreBusy) {
		t.Fatalf("queue full: %d %q %s", r.status, r.category(), r.body)
	}
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	var b timeseries.ErrorBody
	if err := json.Unmarshal(r.body, &b); err != nil || b.Reason != "queue_full" {
		t.Errorf("body %s: want reason queue_full (%v)", r.body, err)
	}
}

package timeseries

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// Fuzz targets for what clients control: request bodies of every operation and page tokens.
// Seeds live in testdata/fuzz; the default test run replays them. Explore with e.g.
//
//	go test -run '^$' -fuzz FuzzRequestBodies -fuzztime 60s ./timeseries/

// FuzzRequestBodies: any body to any operation gets a JSON answer with a known status, never
// a panic, and an error answer names a reason.
func FuzzRequestBodies(f *testing.F) {
	iv := `"timeInterval":{"start":"2026-03-10T10:00:00Z","end":"2026-03-10T12:00:00Z"}`
	for _, s := range []string{
		`{"namespace":"ns","events":[{"timeSeriesId":"d","eventTime":"2026-03-10T11:00:00.123Z","eventId":"e","eventItems":[{"eventItemKey":"ZGV2aWNl","eventItemValue":"aW9z"}]}]}`,
		`{"namespace":"ns","timeSeriesId":"d",` + iv + `,"pageSize":5,"totalRecordLimit":7}`,
		`{"namespace":"ns",` + iv + `,"searchQuery":{"and":[{"equals":{"eventItemKey":"ZGV2aWNl","eventItemValue":"aW9z"}},{"range":{"eventItemKey":"c3RhdHVz","gte":400}}]}}`,
		`{"namespace":"ns",` + iv + `,"searchQuery":{"range":{"eventItemKey":"c3RhdHVz","lt":500}},"aggregationQuery":{"distinct":{"eventItemKey":"ZGV2aWNl"}}}`,
		`{"Namespace":"ns"}`, `{"namespace":"ns","namespace":"x"}`, "{\"namespace\":\"\xff\"}", `[]`, `null`, ``,
	} {
		for op := range 5 {
			f.Add(uint8(op), []byte(s))
		}
	}
	clk := newClock(baseTime)
	svc, err := Open(f.TempDir(), testConfig(), WithClock(clk.now), WithoutRetentionLoop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = svc.Close(context.Background()) })
	ops := Operations()
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		r := svc.Serve(t.Context(), ops[int(op)%len(ops)], body)
		switch r.Status {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d for %q: %s", r.Status, body, r.Body)
		}
		if !json.Valid(r.Body) {
			t.Fatalf("answer is not JSON: %q", r.Body)
		}
		if r.Status >= 400 {
			var eb ErrorBody
			if err := json.Unmarshal(r.Body, &eb); err != nil || eb.Error == "" || eb.Reason == "" {
				t.Fatalf("error answer without message or reason: %s", r.Body)
			}
		}
	})
}

// FuzzPageToken: a token is either refused with a 400 naming pageToken or decodes to a state
// that re-encodes to itself; tokens the service issues always round-trip.
func FuzzPageToken(f *testing.F) {
	at := time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC).UnixMilli()
	fp := fingerprint(OpRead, "ns", "d")
	for _, tok := range []pageToken{{Q: fp}, {Q: fp, T: &at, I: "e1", N: 10}, {Q: fp, T: &at, S: "dev", I: "x"}, {Q: fp, O: 40}} {
		f.Add(tok.encode())
	}
	f.Add("")
	f.Add("not-a-token")
	f.Add("eyJ2IjoxLCJxIjoxfQ")
	f.Fuzz(func(t *testing.T, s string) {
		tok, aerr := decodeToken(s, fp)
		if s == "" {
			if aerr != nil || tok.T != nil || tok.N != 0 {
				t.Fatalf("no token must mean the first page: %+v %v", tok, aerr)
			}
			return
		}
		if aerr != nil {
			if aerr.status != http.StatusBadRequest || aerr.field != "pageToken" {
				t.Fatalf("token %q refused with %d %q", s, aerr.status, aerr.field)
			}
			return
		}
		if tok.N < 0 || tok.O < 0 {
			t.Fatalf("negative counters accepted: %+v", tok)
		}
		again, aerr := decodeToken(tok.encode(), fp)
		if aerr != nil || again.N != tok.N || again.O != tok.O || again.I != tok.I || again.S != tok.S || (again.T == nil) != (tok.T == nil) {
			t.Fatalf("re-encoded token does not round-trip: %+v vs %+v (%v)", tok, again, aerr)
		}
	})
}

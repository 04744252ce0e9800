package timeseries

import (
	"slices"
	"testing"
	"time"
)

// Issue 15 items 2 and 3: totalRecordLimit caps read and search across pages, and the page
// that reaches the limit carries no token (its successor would be empty).
func TestTotalRecordLimitEndsPaginationForReadAndSearch(t *testing.T) {
	f := newFixture(t, testConfig(), nil)
	var recs []EventRecord
	for i := 0; i < 30; i++ {
		recs = append(recs, ev("dev1", baseTime.Add(-time.Duration(i+1)*time.Minute), eventID(i), "device", "ios"))
	}
	f.writeSync(recs...)
	iv := interval(baseTime.Add(-time.Hour), baseTime)
	for _, c := range []struct{ limit, pageSize, wantPages int }{
		{10, 5, 2}, {10, 10, 1}, {7, 5, 2}, {10, 100, 1}, {50, 20, 2},
	} {
		wantN := min(c.limit, len(recs))
		pages := func(call func(token string) EventsResponse) []string {
			var got []string
			token := ""
			for n := 1; ; n++ {
				resp := call(token)
				got = append(got, ids(resp.Events)...)
				if resp.NextPageToken == "" {
					if n != c.wantPages {
						t.Errorf("limit %d page %d: %d pages, want %d", c.limit, c.pageSize, n, c.wantPages)
					}
					return got
				}
				if n > 10 {
					t.Fatal("does not terminate")
				}
				token = resp.NextPageToken
			}
		}
		want := ids(recs[:wantN])
		read := pages(func(token string) EventsResponse {
			var resp EventsResponse
			f.mustCall(OpRead, ReadRequest{Namespace: "ns", TimeSeriesID: "dev1", TimeInterval: iv, PageSize: c.pageSize, TotalRecordLimit: c.limit, PageToken: token}, 200, &resp)
			return resp
		})
		if !slices.Equal(read, want) {
			t.Errorf("read limit %d page %d: %v", c.limit, c.pageSize, read)
		}
		search := pages(func(token string) EventsResponse {
			var resp EventsResponse
			f.mustCall(OpSearch, SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios")), PageSize: c.pageSize, TotalRecordLimit: c.limit, PageToken: token}, 200, &resp)
			return resp
		})
		if !slices.Equal(search, want) {
			t.Errorf("search limit %d page %d: %v", c.limit, c.pageSize, search)
		}
	}
	// A token is bound to its limit like to the rest of the query.
	var first EventsResponse
	f.mustCall(OpSearch, SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios")), PageSize: 5, TotalRecordLimit: 10}, 200, &first)
	st, body := f.call(OpSearch, SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios")), PageSize: 5, TotalRecordLimit: 20, PageToken: first.NextPageToken})
	checkError(t, st, body, 400, "pageToken", -1, "different query")
	st, body = f.call(OpSearch, SearchRequest{Namespace: "ns", TimeInterval: iv, SearchQuery: ptr(eqQ("device", "ios")), TotalRecordLimit: -1})
	checkError(t, st, body, 400, "totalRecordLimit", -1, "negative")
}

package filters_test

import (
	"net/http"
	"testing"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
)

type okEndpoint struct{ filters.Base }

func (okEndpoint) Apply(c *filters.Context) error {
	c.Respond(http.StatusOK, filters.CategorySuccess, "ok")
	return nil
}

// TestDriveRecoversPanics: a panic outside any filter (here in the
// dispatcher's preparation) becomes a 500 with the internal_error
// category, and the Context is still released (its hooks run).
func TestDriveRecoversPanics(t *testing.T) {
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{okEndpoint{filters.EndpointBase("ok")}})
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan filters.Category, 1)
	url := chaintest.Serve(t, chain, chaintest.Options{Prepare: func(c *filters.Context) {
		c.OnDone(func(c *filters.Context) { released <- c.Category })
		if c.Path == "/boom" {
			panic("boom")
		}
	}})
	client := chaintest.Client(t)
	for path, want := range map[string]int{"/fine": http.StatusOK, "/boom": http.StatusInternalServerError} {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
		}
		cat := <-released
		if got := resp.Header.Get(filters.StatusHeader); got != string(cat) {
			t.Errorf("%s: header category %q, hooks saw %q", path, got, cat)
		}
		if path == "/boom" && cat != filters.CategoryInternalError {
			t.Errorf("panic ended as %q", cat)
		}
	}
}

package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
)

// A sequential run's exchange is released (zeroed, and pooled outside the
// race build); a hedged run's is left alone, because its forked attempts
// may still use it after origins.Do returned.
func TestExchangeReleaseSparesForkedRuns(t *testing.T) {
	e := &forwardEndpoint{}
	c := &filters.Context{}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("/x")

	seq := acquireExchange(exchange{e: e, c: c, req: req, origin: "a"})
	seq.release()
	if seq.e != nil || seq.c != nil || seq.req != nil || seq.origin != "" {
		t.Fatalf("a released exchange kept its request's fields: %+v", *seq)
	}

	hedged := acquireExchange(exchange{e: e, c: c, req: req, origin: "a"})
	send := hedged.Fork()
	hedged.release()
	if hedged.e != e || hedged.c != c || hedged.req != req || hedged.origin != "a" || send == nil {
		t.Fatalf("a forked exchange was released: %+v", *hedged)
	}
}

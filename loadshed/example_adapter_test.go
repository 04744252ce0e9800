package loadshed_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/trust"
)

// httpReq stands in for the gateway's adapter over its request context.
type httpReq struct {
	method, path, route string
	hdr                 map[string]string
}

func (r *httpReq) Method() string         { return r.method }
func (r *httpReq) Path() string           { return r.path }
func (r *httpReq) Route() string          { return r.route }
func (r *httpReq) Header(n string) string { return r.hdr[n] }
func (r *httpReq) Query(string) string    { return "" }
func (r *httpReq) Identity() trust.Identity {
	ip := netip.MustParseAddr("198.51.100.4")
	return trust.Identity{Peer: ip, Client: ip}
}

// The per-request flow of the two filter adapters.
func Example() {
	cfg := loadshed.Default()
	ninetyFive := 95
	cfg.Scoring.Rules = []loadshed.RuleConfig{
		{Name: "logs", Match: loadshed.MatchConfig{PathPrefixes: []string{"/logs"}}, Set: &ninetyFive},
	}
	shed, err := loadshed.New(cfg)
	if err != nil {
		panic(err)
	}
	defer shed.Close()

	r := &httpReq{method: "POST", path: "/logs/batch", route: "logs", hdr: map[string]string{}}

	// Inbound, early: score, then chaos + global scope.
	score := shed.Score(r)
	d := shed.DecideGlobal(r, score)
	if d.Shed {
		fmt.Println("503", d.RetryAfter, d.HeaderValue())
		return
	}
	shed.Global().Begin()
	defer shed.Global().End()

	// Once the route's origin is known: the origin scope.
	o := shed.Origin("logs-backend")
	if d := o.Decide(score); d.Shed {
		fmt.Println("503", d.HeaderValue())
		return
	}
	o.Begin()
	start := time.Now()
	// ... proxy to the origin ...
	o.Done(time.Since(start), false)

	fmt.Println("score", score, "admitted, global cutoff", d.CutoffInt())
	// Output: score 95 admitted, global cutoff 100
}

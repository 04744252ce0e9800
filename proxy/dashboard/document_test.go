package dashboard

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/filters/metrics"
	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/ratelimit"
	"github.com/floodgate-dev/floodgate/routing"
)

// The document reads the real components: each scope with its own k, the
// origins with their instances, requests summed by category across routes
// and status classes, and the rate-limit policies.
func TestDocumentFromRunningComponents(t *testing.T) {
	shedCfg := loadshed.Default()
	shedCfg.Global.K = 2
	half := 0.5
	shedCfg.Origins = map[string]loadshed.OriginOverride{"api": {K: &half}}
	shedder, err := loadshed.New(shedCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer shedder.Close()
	shedder.Origin("api")
	shedder.Origin("web")

	oc := origins.DefaultOriginConfig()
	oc.Instances = []origins.InstanceConfig{{Address: "127.0.0.1:1", Weight: 3}}
	reg, err := origins.NewRegistry(map[string]origins.OriginConfig{"api": oc}, origins.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	lim := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer lim.Close()
	if err := lim.Update([]ratelimit.Policy{{Name: "per-client", Rate: 5, Burst: 5, Key: []string{"client_ip"}}}); err != nil {
		t.Fatal(err)
	}
	lim.Allow("per-client", []byte("a"))

	m := metrics.New()
	observe := func(route string, status int, cat filters.Category) {
		c := filters.AcquireContext()
		c.Start = time.Now()
		c.Status, c.Category = status, cat
		if route != "" {
			c.Route = &routing.Route{Name: route}
		}
		m.ObserveRequest(c)
		c.Release()
	}
	observe("a", 200, filters.CategorySuccess)
	observe("b", 204, filters.CategorySuccess)
	observe("a", 503, filters.CategoryShedGlobal)

	src := &Sources{Shedder: shedder, Origins: reg, Limiters: lim, Metrics: m.Gatherer(),
		Extra: map[string]func() any{"queue": func() any { return map[string]int{"depth": 3} }}}
	doc := src.Document()

	if len(doc.Scopes) != 3 || doc.Scopes[0].Name != "global" || doc.Scopes[1].Name != "api" || doc.Scopes[2].Name != "web" {
		t.Fatalf("scopes: %+v", doc.Scopes)
	}
	if doc.Scopes[0].K != 2 || doc.Scopes[1].K != 0.5 || doc.Scopes[2].K != shedCfg.Origin.K {
		t.Errorf("k per scope: %v %v %v", doc.Scopes[0].K, doc.Scopes[1].K, doc.Scopes[2].K)
	}
	if len(doc.Origins) != 1 || doc.Origins[0].Name != "api" {
		t.Fatalf("origins: %+v", doc.Origins)
	}
	in := doc.Origins[0].Instances[0]
	if in.Address != "127.0.0.1:1" || in.Weight != 3 || in.Breaker != "closed" || !in.Healthy || in.LatencyMS <= 0 {
		t.Errorf("instance: %+v", in)
	}
	if doc.Requests["success"] != 2 || doc.Requests["local_shed_global"] != 1 {
		t.Errorf("requests by category: %v", doc.Requests)
	}
	if len(doc.RateLimits) != 1 || doc.RateLimits[0].Keys != 1 || doc.RateLimits[0].Admitted != 1 {
		t.Errorf("rate limits: %+v", doc.RateLimits)
	}
	// The page reads these JSON names.
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	scope := generic["scopes"].([]any)[0].(map[string]any)
	for _, key := range []string{"name", "k", "cutoff", "overload", "signals", "shed", "would_shed", "in_flight", "dry_run"} {
		if _, ok := scope[key]; !ok {
			t.Errorf("scope JSON lacks %q: %v", key, scope)
		}
	}
	if generic["extra"].(map[string]any)["queue"].(map[string]any)["depth"] != 3.0 {
		t.Errorf("extra: %v", generic["extra"])
	}
}

package chaos

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/filters/shed"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
	"github.com/floodgate-dev/floodgate/loadshed"
)

type okEndpoint struct{ filters.Base }

func (okEndpoint) Apply(c *filters.Context) error {
	c.Request.Response.SetBodyString("ok")
	c.MarkResponded(200, filters.CategorySuccess)
	return nil
}

type recorder struct {
	mu   sync.Mutex
	seen map[string]int // "experiment group outcome"
	min  map[string]time.Duration
}

func (r *recorder) ObserveChaos(experiment, group, outcome string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := experiment + " " + group + " " + outcome
	r.seen[k]++
	if m, ok := r.min[k]; !ok || d < m {
		r.min[k] = d
	}
}

// A global experiment claims its requests: the per-origin experiment never
// touches them, and a delay experiment serves its group late but normally.
func TestGlobalExperimentClaimsBeforeOriginExperiments(t *testing.T) {
	cfg := loadshed.Default()
	cfg.Chaos.Experiments = []loadshed.ExperimentConfig{
		{Name: "slow", Key: "header:X-User-Id", Fraction: 0.5, Action: loadshed.ActionDelay, Delay: 20 * time.Millisecond, Duration: time.Hour},
		{Name: "shed-users", Key: "header:X-User-Id", Fraction: 0.5, Origin: "users", Action: loadshed.ActionShed, Duration: time.Hour},
	}
	sh, err := loadshed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	rec := &recorder{seen: map[string]int{}, min: map[string]time.Duration{}}
	s := &filters.Services{}
	shed.ShedderKey.Provide(s, sh)
	ObserverKey.Provide(s, rec)
	g, err := filters.Default.Build(&filters.Env{Path: GlobalFilterName, Services: s}, GlobalFilterName, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := filters.Default.Build(&filters.Env{Path: OriginFilterName, Services: s, Route: &filters.Route{Name: "r", Origin: "users"}}, OriginFilterName, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{g, o, okEndpoint{filters.EndpointBase("ok")}})
	if err != nil {
		t.Fatal(err)
	}
	url := chaintest.Serve(t, chain, chaintest.Options{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	want := map[string]int{}
	for i := range 40 {
		user := "u" + strconv.Itoa(i)
		req, _ := http.NewRequest("GET", url+"/x", nil)
		req.Header.Set("X-User-Id", user)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d (the origin experiment touched a request the global one counts)", user, resp.StatusCode)
		}
		want["slow "+loadshed.GroupOf("slow", []byte(user), 0.5).String()+" success"]++
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for k, n := range want {
		if rec.seen[k] != n {
			t.Errorf("%s: %d counted, want %d (all: %v)", k, rec.seen[k], n, rec.seen)
		}
	}
	if d, ok := rec.min["slow experiment success"]; !ok || d < 20*time.Millisecond {
		t.Errorf("the quickest request of the delayed group took %v, want >= 20ms", d)
	}
}

// On an origin group's route a request is in the experiments of the member
// it is sent to now.
func TestOriginExperimentFollowsAGroupsActiveMember(t *testing.T) {
	cfg := loadshed.Default()
	cfg.Chaos.Experiments = []loadshed.ExperimentConfig{
		{Name: "shed-b", Key: "header:X-User-Id", Fraction: 0.5, Origin: "b", Action: loadshed.ActionShed, Duration: time.Hour},
	}
	sh, err := loadshed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	s := &filters.Services{}
	shed.ShedderKey.Provide(s, sh)
	var mu sync.Mutex
	active := "a"
	route := &filters.Route{Name: "r", Origin: "group", ActiveOrigin: func() string { mu.Lock(); defer mu.Unlock(); return active }}
	o, err := filters.Default.Build(&filters.Env{Path: OriginFilterName, Services: s, Route: route}, OriginFilterName, nil)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{o, okEndpoint{filters.EndpointBase("ok")}})
	if err != nil {
		t.Fatal(err)
	}
	url := chaintest.Serve(t, chain, chaintest.Options{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	member := ""
	for i := 0; member == ""; i++ {
		if u := "u" + strconv.Itoa(i); loadshed.GroupOf("shed-b", []byte(u), 0.5) == loadshed.GroupExperiment {
			member = u
		}
	}
	status := func() int {
		req, _ := http.NewRequest("GET", url+"/x", nil)
		req.Header.Set("X-User-Id", member)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 200 {
		t.Fatalf("sent to a: %d, want 200 (the experiment is b's)", got)
	}
	mu.Lock()
	active = "b"
	mu.Unlock()
	if got := status(); got != 503 {
		t.Fatalf("sent to b: %d, want 503 from b's experiment", got)
	}
}

package consulfake

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// client returns a real Consul API client pointed at the fake, and a cleanup.
func client(t *testing.T, s *Server, dc, token string) *api.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = s.Addr()
	cfg.Datacenter = dc
	cfg.Token = token
	cfg.Transport = tr
	cfg.HttpClient = &http.Client{Transport: tr}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newFake(t *testing.T) *Server {
	t.Helper()
	s, err := New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func ids(es []*api.ServiceEntry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Service.ID)
	}
	return strings.Join(out, ",")
}

func TestFiltersAndShape(t *testing.T) {
	s := newFake(t)
	s.Register("web", Instance{ID: "w1", Node: "n1", NodeIP: "10.0.0.1", Port: 80, Tags: []string{"v1", "canary"}, Passing: true, Weight: 5})
	s.Register("web", Instance{ID: "w2", Node: "n2", Address: "10.1.0.2", Port: 81, Tags: []string{"v1"}, Passing: true})
	s.Register("web", Instance{ID: "w3", Node: "n3", NodeIP: "10.0.0.3", Port: 82, Tags: []string{"v1"}, Passing: false})
	s.Register("db", Instance{ID: "d1", Node: "n1", Port: 5432, Passing: true})
	h := client(t, s, "", "").Health()

	all, meta, err := h.Service("web", "", false, nil)
	if err != nil || ids(all) != "w1,w2,w3" || meta.LastIndex == 0 || !meta.KnownLeader {
		t.Fatalf("all: %v %q %+v", err, ids(all), meta)
	}
	passing, _, _ := h.Service("web", "", true, nil)
	if ids(passing) != "w1,w2" {
		t.Fatalf("passing: %q", ids(passing))
	}
	tagged, _, _ := h.Service("web", "canary", true, nil)
	if ids(tagged) != "w1" {
		t.Fatalf("tag: %q", ids(tagged))
	}
	e := passing[0]
	if e.Node.Address != "10.0.0.1" || e.Service.Port != 80 || e.Service.Weights.Passing != 5 || e.Node.Datacenter != "dc1" {
		t.Fatalf("entry shape: %+v %+v", e.Node, e.Service)
	}
	if st := passing[0].Checks.AggregatedStatus(); st != api.HealthPassing {
		t.Fatalf("checks: %v", st)
	}
	none, meta2, err := h.Service("nope", "", true, nil)
	if err != nil || len(none) != 0 || meta2.LastIndex == 0 {
		t.Fatalf("unknown service: %v %v %+v", err, none, meta2)
	}
}

func TestDatacenterAndToken(t *testing.T) {
	s := newFake(t)
	s.Register("web", Instance{ID: "w1", Port: 80, NodeIP: "10.0.0.1", Passing: true})
	if _, _, err := client(t, s, "dc2", "").Health().Service("web", "", true, nil); err == nil ||
		!strings.Contains(err.Error(), "No path to datacenter") {
		t.Fatalf("dc2: %v", err)
	}
	if _, _, err := client(t, s, "dc1", "").Health().Service("web", "", true, nil); err != nil {
		t.Fatalf("dc1: %v", err)
	}
	s.RequireToken("secret")
	if _, _, err := client(t, s, "", "wrong").Health().Service("web", "", true, nil); err == nil ||
		!strings.Contains(err.Error(), "403") {
		t.Fatalf("bad token: %v", err)
	}
	if es, meta, err := client(t, s, "", "secret").Health().Service("web", "", true, nil); err != nil || len(es) != 1 || meta.ResultsFilteredByACLs {
		t.Fatalf("good token: %d entries, filtered %v, %v", len(es), meta != nil && meta.ResultsFilteredByACLs, err)
	}
	// Like Consul: no token (anonymous, default deny) or a token without
	// service:read is not an error but an ACL-filtered empty list.
	s.AddToken("other-only", "other")
	for _, tok := range []string{"", "other-only"} {
		es, meta, err := client(t, s, "", tok).Health().Service("web", "", true, nil)
		if err != nil || len(es) != 0 || !meta.ResultsFilteredByACLs || meta.LastIndex == 0 {
			t.Fatalf("token %q: %d entries, meta %+v, %v; want 200, empty, filtered", tok, len(es), meta, err)
		}
	}
}

func TestBlockingQueryReturnsOnChange(t *testing.T) {
	s := newFake(t)
	s.Register("web", Instance{ID: "w1", Port: 80, NodeIP: "10.0.0.1", Passing: true})
	h := client(t, s, "", "").Health()
	_, meta, err := h.Service("web", "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		es    []*api.ServiceEntry
		index uint64
		err   error
		took  time.Duration
	}
	ch := make(chan res, 1)
	go func() {
		start := time.Now()
		es, m, err := h.Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		r := res{es: es, err: err, took: time.Since(start)}
		if m != nil {
			r.index = m.LastIndex
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		t.Fatalf("blocking query returned before any change: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	s.SetPassing("web", "w1", false)
	r := <-ch
	if r.err != nil || len(r.es) != 0 || r.index <= meta.LastIndex {
		t.Fatalf("after change: %+v (index before %d)", r, meta.LastIndex)
	}
}

func TestBlockingQueryWaitExpires(t *testing.T) {
	s := newFake(t)
	s.Register("web", Instance{ID: "w1", Port: 80, NodeIP: "10.0.0.1", Passing: true})
	h := client(t, s, "", "").Health()
	_, meta, _ := h.Service("web", "", true, nil)
	start := time.Now()
	es, meta2, err := h.Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 150 * time.Millisecond})
	took := time.Since(start)
	if err != nil || len(es) != 1 || meta2.LastIndex != meta.LastIndex {
		t.Fatalf("timeout answer: %v %d %+v", err, len(es), meta2)
	}
	if took < 150*time.Millisecond || took > 2*time.Second {
		t.Fatalf("wait not honoured: %v", took)
	}
	// Changes to another service do not wake this one.
	done := make(chan error, 1)
	go func() {
		_, _, err := h.Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 300 * time.Millisecond})
		done <- err
	}()
	s.Register("db", Instance{ID: "d1", Port: 1, NodeIP: "10.0.0.9", Passing: true})
	select {
	case <-done:
		t.Fatal("web query woke on a db change")
	case <-time.After(150 * time.Millisecond):
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestResetIndexGoesBackwards(t *testing.T) {
	s := newFake(t)
	for i := 0; i < 5; i++ {
		s.Register("web", Instance{ID: "w1", Port: 80 + i, NodeIP: "10.0.0.1", Passing: true})
	}
	h := client(t, s, "", "").Health()
	_, meta, _ := h.Service("web", "", true, nil)
	s.ResetIndex("web", 2)
	_, meta2, err := h.Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 100 * time.Millisecond})
	if err != nil || meta2.LastIndex >= meta.LastIndex {
		t.Fatalf("index should have gone backwards: %d -> %d (%v)", meta.LastIndex, meta2.LastIndex, err)
	}
}

func TestOutages(t *testing.T) {
	s := newFake(t)
	s.Register("web", Instance{ID: "w1", Port: 80, NodeIP: "10.0.0.1", Passing: true})
	h := client(t, s, "", "").Health()
	s.SetOutage(OutageError)
	if _, _, err := h.Service("web", "", true, nil); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("error outage: %v", err)
	}
	s.SetOutage(OutageHang)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, _, err := h.Service("web", "", true, (&api.QueryOptions{}).WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang outage: %v", err)
	}
	s.SetOutage(OutageNone)
	if es, _, err := h.Service("web", "", true, nil); err != nil || len(es) != 1 {
		t.Fatalf("after outage: %v", err)
	}
}

func TestCloseReleasesBlockedQueries(t *testing.T) {
	s, err := New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	s.Register("web", Instance{ID: "w1", Port: 80, NodeIP: "10.0.0.1", Passing: true})
	h := client(t, s, "", "").Health()
	_, meta, _ := h.Service("web", "", true, nil)
	done := make(chan error, 1)
	go func() {
		_, _, err := h.Service("web", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- err
	}()
	eventually := time.Now().Add(time.Second)
	for s.Queries() < 2 && time.Now().Before(eventually) {
		time.Sleep(time.Millisecond)
	}
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("query to a closed agent should fail")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close left a blocked query hanging")
	}
}

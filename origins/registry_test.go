package origins

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestRegistryUpdate(t *testing.T) {
	r, err := NewRegistry(map[string]OriginConfig{
		"a": staticConfig("10.0.0.1:80", "10.0.0.2:80"),
		"b": staticConfig("10.0.1.1:80"),
	}, Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var mu sync.Mutex
	seen := map[string][2]int{} // origin -> added, removed
	cancel := r.Subscribe(func(c Change) {
		mu.Lock()
		defer mu.Unlock()
		v := seen[c.Origin]
		v[0] += len(c.Added)
		v[1] += len(c.Removed)
		seen[c.Origin] = v
	})
	defer cancel()
	if strings.Join(r.Names(), ",") != "a,b" {
		t.Fatalf("names %v", r.Names())
	}
	a, _ := r.Get("a")
	kept := byAddr(a, "10.0.0.2:80")
	gone := byAddr(r.mustGet(t, "b"), "10.0.1.1:80")

	// Invalid update: nothing changes.
	bad := staticConfig("10.0.0.1:80")
	bad.Retry.Attempts = 0
	if err := r.Update(map[string]OriginConfig{"a": bad}); err == nil || !strings.Contains(err.Error(), "a.retry.attempts") {
		t.Fatalf("invalid update: %v", err)
	}
	if _, ok := r.Get("b"); !ok {
		t.Fatal("invalid update removed an origin")
	}

	ca := staticConfig("10.0.0.2:80", "10.0.0.3:80")
	ca.MaxConcurrency = 7
	if err := r.Update(map[string]OriginConfig{"a": ca, "c": staticConfig("10.0.2.1:80")}); err != nil {
		t.Fatal(err)
	}
	if a2, _ := r.Get("a"); a2 != a || byAddr(a, "10.0.0.2:80") != kept || a.Config().MaxConcurrency != 7 {
		t.Fatal("origin a must be reconfigured in place, keeping its instances")
	}
	if _, ok := r.Get("b"); ok {
		t.Fatal("b must be gone")
	}
	select {
	case <-gone.Drained():
	default:
		t.Fatal("instances of a removed origin must drain")
	}
	if _, _, err := r.mustGet(t, "c").Pick(nil); err != nil {
		t.Fatalf("new origin c: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string][2]int{"a": {3, 1}, "b": {1, 1}, "c": {1, 0}}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("origin %s: added/removed %v, want %v", k, seen[k], v)
		}
	}
	if _, ok := r.Get("nope"); ok {
		t.Fatal("unknown origin")
	}
}

func (r *Registry) mustGet(t *testing.T, name string) *Origin {
	t.Helper()
	o, ok := r.Get(name)
	if !ok {
		t.Fatalf("no origin %q", name)
	}
	return o
}

func TestRegistryClosed(t *testing.T) {
	r, err := NewRegistry(map[string]OriginConfig{"a": staticConfig("10.0.0.1:80")}, Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
	if err := r.Update(map[string]OriginConfig{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after close: %v", err)
	}
	if _, err := NewRegistry(map[string]OriginConfig{"": staticConfig("10.0.0.1:80")}, Options{Logger: discardLogger()}); err == nil {
		t.Fatal("empty origin name must be rejected")
	}
}

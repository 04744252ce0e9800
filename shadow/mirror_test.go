package shadow

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	c := Config{Origin: " Shadow ", Fraction: 0.5}.WithDefaults()
	if c.Origin != "shadow" || c.MaxConcurrency != DefaultMaxConcurrency || c.MaxBody != DefaultMaxBody || c.Timeout != DefaultTimeout {
		t.Fatalf("defaults %+v", c)
	}
	err := Config{Fraction: 1.5, MaxConcurrency: -1, Timeout: time.Hour, Host: "a b"}.Validate()
	for _, key := range []string{"origin:", "fraction:", "max_concurrency:", "timeout:", "host:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("missing %s in %v", key, err)
		}
	}
}

func TestMirrorBoundsInFlightAcrossMirrorsSharingSlots(t *testing.T) {
	var slots atomic.Int64
	a := NewMirror(Config{Origin: "s", Fraction: 1, MaxConcurrency: 2}, &slots, nil)
	b := NewMirror(Config{Origin: "s", Fraction: 1, MaxConcurrency: 2}, &slots, nil) // after a reload
	if !a.TryAcquire() || !b.TryAcquire() {
		t.Fatal("slots refused under the bound")
	}
	if a.TryAcquire() || b.TryAcquire() {
		t.Fatal("a third copy admitted over max_concurrency 2")
	}
	a.Release()
	if !b.TryAcquire() {
		t.Fatal("a released slot is not reusable")
	}
	if slots.Load() != 2 {
		t.Fatalf("in flight %d", slots.Load())
	}
}

func TestMirrorSamplesTheFraction(t *testing.T) {
	var slots atomic.Int64
	draws := []float64{0.05, 0.1, 0.5, 0.099}
	i := 0
	m := NewMirror(Config{Origin: "s", Fraction: 0.1}, &slots, func() float64 { i++; return draws[i-1] })
	var got []bool
	for range draws {
		got = append(got, m.Sampled())
	}
	if want := []bool{true, false, false, true}; strings.Join(strs(got), ",") != strings.Join(strs(want), ",") {
		t.Fatalf("sampled %v, want %v", got, want)
	}
	if !m.BodyFits(1<<20) || m.BodyFits(1<<20+1) {
		t.Fatal("max_body 1MiB")
	}
}

func strs(bs []bool) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = map[bool]string{true: "t", false: "f"}[b]
	}
	return out
}

func TestComparisonReportsOnceWhicheverSideIsLast(t *testing.T) {
	for range 200 {
		var reports atomic.Int32
		var got [2]Answer
		p := NewComparison(func(pr, sh Answer) { reports.Add(1); got = [2]Answer{pr, sh} })
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); p.Primary(Answer{Status: 200, Latency: time.Millisecond}) }()
		go func() { defer wg.Done(); p.Shadow(Answer{Status: 503, Latency: 2 * time.Millisecond}) }()
		wg.Wait()
		if reports.Load() != 1 || got[0].Status != 200 || got[1].Status != 503 || SameClass(got[0].Status, got[1].Status) {
			t.Fatalf("reports %d %+v", reports.Load(), got)
		}
	}
	var reports atomic.Int32
	p := NewComparison(func(Answer, Answer) { reports.Add(1) })
	p.Shadow(Answer{}) // no answer: nothing to compare
	p.Primary(Answer{Status: 200})
	if reports.Load() != 0 {
		t.Fatal("a failed shadow was compared")
	}
}

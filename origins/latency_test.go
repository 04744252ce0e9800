package origins

import (
	"testing"
	"time"
)

func TestLatencyQuantileWithinBucket(t *testing.T) {
	clk := &fakeClock{}
	w := newLatencyWindow(10*time.Second, clk.now)
	for i := 1; i <= 1000; i++ {
		w.record(time.Duration(i) * time.Millisecond) // uniform 1ms..1s
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		got, n := w.quantile(q)
		want := time.Duration(q * float64(time.Second))
		if n != 1000 {
			t.Fatalf("count %d", n)
		}
		if got < want || float64(got) > float64(want)*1.16 {
			t.Errorf("q%.2f: got %v want %v (+15%%)", q, got, want)
		}
	}
}

func TestLatencyWindowForgets(t *testing.T) {
	clk := &fakeClock{}
	w := newLatencyWindow(time.Second, clk.now)
	for i := 0; i < 100; i++ {
		w.record(500 * time.Millisecond)
	}
	clk.advance(1100 * time.Millisecond)
	for i := 0; i < 100; i++ {
		w.record(time.Millisecond)
	}
	if d, n := w.quantile(0.99); n != 200 || d < 500*time.Millisecond {
		t.Fatalf("previous period must still count: %v over %d", d, n)
	}
	clk.advance(1100 * time.Millisecond)
	w.record(time.Millisecond)
	if d, n := w.quantile(0.99); n != 101 || d > 2*time.Millisecond {
		t.Fatalf("two periods later the slow samples must be gone: %v over %d", d, n)
	}
}

func TestBucketExtremes(t *testing.T) {
	if bucketOf(0) != 0 || bucketOf(-time.Second) != 0 {
		t.Fatal("non-positive durations go to bucket 0")
	}
	if bucketOf(time.Hour) != histBuckets-1 {
		t.Fatal("huge durations are clamped")
	}
}

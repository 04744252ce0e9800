package loadshed

import (
	"testing"
	"time"
)

func TestWindowSlides(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := newWindow(time.Second, 4, t0) // 250 ms buckets
	w.add(10*time.Millisecond, true)
	w.advance(t0.Add(300 * time.Millisecond))
	w.add(30*time.Millisecond, false)
	if tot, fail, lat, _ := w.sums(); tot != 2 || fail != 1 || lat != uint64(40*time.Millisecond) {
		t.Fatalf("sums %d %d %d", tot, fail, lat)
	}
	// After three more buckets the first sample has left the window.
	w.advance(t0.Add(1000 * time.Millisecond))
	if tot, fail, _, _ := w.sums(); tot != 1 || fail != 0 {
		t.Fatalf("after sliding: total %d failed %d, want 1 0", tot, fail)
	}
	// A long pause empties it entirely.
	w.advance(t0.Add(time.Hour))
	if tot, _, _, _ := w.sums(); tot != 0 {
		t.Fatalf("after an hour: total %d", tot)
	}
	w.add(time.Millisecond, false)
	if tot, _, _, _ := w.sums(); tot != 1 {
		t.Fatal("window stopped counting after a long pause")
	}
}

func TestSingleBucketWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := newWindow(time.Second, 1, t0)
	w.add(time.Millisecond, true)
	w.advance(t0.Add(999 * time.Millisecond))
	if tot, _, _, _ := w.sums(); tot != 1 {
		t.Fatal("cleared too early")
	}
	w.advance(t0.Add(time.Second))
	if tot, _, _, _ := w.sums(); tot != 0 {
		t.Fatal("not cleared after its span")
	}
}

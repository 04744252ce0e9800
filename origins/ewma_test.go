package origins

import (
	"math"
	"testing"
	"time"
)

func TestPeakEWMAJumpsUpDecaysDown(t *testing.T) {
	tau := float64(time.Second)
	e := newPeakEWMA(0, float64(10*time.Millisecond))
	e.observe(int64(time.Millisecond), float64(100*time.Millisecond), tau)
	if got := e.get(int64(time.Millisecond), tau); got != float64(100*time.Millisecond) {
		t.Fatalf("peak not taken at once: %v", time.Duration(got))
	}
	// One tau later a 10ms observation pulls the estimate to 100/e + 10(1-1/e).
	e.observe(int64(time.Millisecond+time.Second), float64(10*time.Millisecond), tau)
	want := 100/math.E + 10*(1-1/math.E)
	got := e.get(int64(time.Millisecond+time.Second), tau) / float64(time.Millisecond)
	if math.Abs(got-want) > 0.01 {
		t.Fatalf("decay: got %.3fms want %.3fms", got, want)
	}
	// Without observations the estimate decays on read, so a shunned instance is
	// eventually tried again.
	later := e.get(int64(10*time.Second), tau)
	if later > float64(time.Millisecond) {
		t.Fatalf("no decay on read: %v", time.Duration(later))
	}
}

package origins

import (
	"math"
	"runtime/metrics"
	"testing"
	"time"
)

// The gateway's delay is the mean scheduling wait of the wake-ups since the
// last reading (each read as its bucket's middle), refreshed at most every
// gatewayDelayPeriod; a period with too few wake-ups is extended, and a
// gateway that stays that quiet for gatewayDelayIdle delays nothing.
func TestGatewayDelayIsTheMeanWaitOfTheLastPeriod(t *testing.T) {
	buckets := []float64{0, 100e-6, 300e-6, 1e-3, math.Inf(1)} // middles 50 µs, 200 µs, 650 µs; the last reads as 1 ms
	counts := []uint64{0, 0, 0, 0}
	clk := &limiterClock{t: time.Unix(0, 0)}
	s := &gatewayDelaySampler{
		read: func() *metrics.Float64Histogram {
			return &metrics.Float64Histogram{Counts: append([]uint64(nil), counts...), Buckets: buckets}
		},
		now: clk.now,
	}
	if got := s.delay(); got != 0 {
		t.Fatalf("first reading: %v, want 0 (no period yet)", got)
	}
	add := func(c ...uint64) {
		for i := range c {
			counts[i] += c[i]
		}
	}
	add(60, 0, 40, 0) // mean (60 x 50 + 40 x 650) / 100 = 290 µs
	clk.t = clk.t.Add(gatewayDelayPeriod / 2)
	if got := s.delay(); got != 0 {
		t.Fatalf("within the period: %v, want the previous value 0", got)
	}
	clk.t = clk.t.Add(gatewayDelayPeriod / 2)
	if got := s.delay(); got != 290*time.Microsecond {
		t.Fatalf("after a period: %v, want 290µs", got)
	}
	add(0, 0, 0, 50) // only this period's wake-ups count: the open-ended bucket reads as 1 ms
	clk.t = clk.t.Add(gatewayDelayPeriod)
	if got := s.delay(); got != time.Millisecond {
		t.Fatalf("second period: %v, want 1ms", got)
	}
	add(10, 0, 0, 0) // too few: the period is extended, the value stands
	clk.t = clk.t.Add(gatewayDelayPeriod)
	if got := s.delay(); got != time.Millisecond {
		t.Fatalf("10 wake-ups: %v, want the previous 1ms", got)
	}
	add(40, 0, 0, 0) // 50 since the last reading: a mean of 50 µs
	clk.t = clk.t.Add(gatewayDelayPeriod)
	if got := s.delay(); got != 50*time.Microsecond {
		t.Fatalf("extended period: %v, want 50µs", got)
	}
	add(0, 0, 5, 0) // and then the gateway goes quiet
	clk.t = clk.t.Add(gatewayDelayIdle)
	if got := s.delay(); got != 0 {
		t.Fatalf("idle for %v: %v, want 0", gatewayDelayIdle, got)
	}
}

package origins

import (
	"testing"
	"time"
)

type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64              { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t += int64(d) }

func TestBudgetRatioAndReserve(t *testing.T) {
	clk := &fakeClock{}
	b := NewBudget(BudgetConfig{Ratio: 0.2, MinPerSecond: 1, Window: 10 * time.Second}, clk.now)
	// Reserve: 1/s * 10s = 10 retries with no traffic at all.
	got := 0
	for i := 0; i < 100; i++ {
		if b.TryRetry() {
			got++
		}
	}
	if got != 10 {
		t.Fatalf("reserve: want 10 retries, got %d", got)
	}
	for i := 0; i < 1000; i++ {
		b.RecordRequest()
	}
	got = 0
	for i := 0; i < 1000; i++ {
		if b.TryRetry() {
			got++
		}
	}
	if got != 200 { // 0.2*1000 + 10 - 10 already used
		t.Fatalf("ratio: want 200 more retries, got %d", got)
	}
	if b.Denied() != 90+800 || b.Allowed() != 210 {
		t.Fatalf("counters: allowed %d denied %d", b.Allowed(), b.Denied())
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	clk := &fakeClock{}
	b := NewBudget(BudgetConfig{Ratio: 0.5, MinPerSecond: 0, Window: time.Second}, clk.now)
	for i := 0; i < 10; i++ {
		b.RecordRequest()
	}
	for i := 0; i < 5; i++ {
		if !b.TryRetry() {
			t.Fatalf("retry %d denied within budget", i)
		}
	}
	if b.TryRetry() {
		t.Fatal("6th retry allowed over 0.5 * 10")
	}
	clk.advance(1100 * time.Millisecond)
	if b.TryRetry() {
		t.Fatal("old requests must have left the window")
	}
	b.RecordRequest()
	b.RecordRequest()
	if !b.TryRetry() {
		t.Fatal("fresh requests should fund one retry")
	}
}

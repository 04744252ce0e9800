package loadshed

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
)

func TestCutoffMatchesIssueFigures(t *testing.T) {
	cases := []struct{ x, k, want float64 }{
		{0, 1, 100},
		{0.35, 1, 95.7125},
		{0.8, 1, 48.8},
		{0.95, 1, 14.2625},
		{1, 1, 0},
		{1, 0.5, 50},
		{0.8, 2, 0}, // 100*(1-2*0.512) < 0, clamped
		{-1, 1, 100},
		{math.NaN(), 1, 100},
		{7, 1, 0},
	}
	for _, c := range cases {
		if got := Cutoff(c.x, c.k); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Cutoff(%v, k=%v) = %v, want %v", c.x, c.k, got, c.want)
		}
	}
}

func TestOverloadFraction(t *testing.T) {
	cases := []struct{ v, thr, max, want float64 }{
		{0, 10, 20, 0}, {10, 10, 20, 0}, {15, 10, 20, 0.5}, {20, 10, 20, 1}, {99, 10, 20, 1}, {math.NaN(), 10, 20, 0},
	}
	for _, c := range cases {
		if got := Overload(c.v, c.thr, c.max); got != c.want {
			t.Errorf("Overload(%v, %v, %v) = %v, want %v", c.v, c.thr, c.max, got, c.want)
		}
	}
}

// Raising overload must never admit a score the curve shed before; and
// score 0 is never shed at any overload.
func TestCurveMonotonic(t *testing.T) {
	for _, k := range []float64{0.5, 1, 2, 10} {
		shed := make([]bool, 101)
		for step := 0; step <= 1000; step++ {
			c := Cutoff(float64(step)/1000, k)
			for score := 0; score <= 100; score++ {
				now := Sheds(score, c)
				if shed[score] && !now {
					t.Fatalf("k=%v x=%v: score %d admitted after being shed", k, float64(step)/1000, score)
				}
				shed[score] = now
			}
			if Sheds(0, c) {
				t.Fatalf("k=%v: score 0 shed", k)
			}
		}
	}
}

// curveTable renders the overload -> cutoff table of SHEDDING.md.
func curveTable() string {
	ks := []float64{0.5, 1, 2}
	var b strings.Builder
	b.WriteString("| overload x | cutoff k=0.5 | cutoff k=1 | cutoff k=2 |\n|---|---|---|---|\n")
	for _, x := range []float64{0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1} {
		fmt.Fprintf(&b, "| %.2f |", x)
		for _, k := range ks {
			fmt.Fprintf(&b, " %.1f |", Cutoff(x, k))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The table in the SRE doc is generated, not typed; this keeps it honest.
func TestShedDocCurveTable(t *testing.T) {
	want := curveTable()
	doc, err := os.ReadFile("SHEDDING.md")
	if err != nil {
		t.Fatalf("%v; the table to paste:\n%s", err, want)
	}
	if !strings.Contains(string(doc), want) {
		t.Fatalf("SHEDDING.md does not contain the computed curve table; paste:\n%s", want)
	}
}

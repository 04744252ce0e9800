package accesslog

import (
	"strings"
	"testing"
	"time"
)

// Shed lines are capped per second; the first line of the next second says
// how many were left out.
func TestShedLinesCappedPerSecond(t *testing.T) {
	s := shedLines{perSecond: 3}
	t0 := time.Unix(1_700_000_000, 0)
	logged := 0
	for i := range 10 {
		if ok, skipped := s.take(t0.Add(time.Duration(i) * 50 * time.Millisecond)); ok {
			logged++
			if skipped != 0 {
				t.Fatalf("line %d carries %d not logged in the first second", i, skipped)
			}
		}
	}
	if logged != 3 {
		t.Fatalf("%d of 10 shed lines logged in one second, cap 3", logged)
	}
	ok, skipped := s.take(t0.Add(1200 * time.Millisecond))
	if !ok || skipped != 7 {
		t.Fatalf("first line of the next second: logged %v, not logged before it %d; want true, 7", ok, skipped)
	}
	if ok, skipped := s.take(t0.Add(1300 * time.Millisecond)); !ok || skipped != 0 {
		t.Fatalf("second line: %v, %d; want true, 0 (the count was reported once)", ok, skipped)
	}
	none := shedLines{perSecond: 0}
	if ok, _ := none.take(t0); ok {
		t.Fatal("shed_lines_per_second 0 logged a shed")
	}
}

func TestShedLinesPerSecondValidated(t *testing.T) {
	o := Defaults()
	if o.ShedLinesPerSecond != 100 {
		t.Fatalf("default shed_lines_per_second %d, want 100", o.ShedLinesPerSecond)
	}
	o.ShedLinesPerSecond = -1
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "shed_lines_per_second") {
		t.Fatalf("negative shed_lines_per_second: %v", err)
	}
}

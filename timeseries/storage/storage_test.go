package storage

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRefOrderIsNewestFirstThenSeriesThenID(t *testing.T) {
	ordered := []Ref{
		{Time: 30, TimeSeriesID: "a", ID: "z"},
		{Time: 20, TimeSeriesID: "a", ID: "b"},
		{Time: 20, TimeSeriesID: "a", ID: "c"},
		{Time: 20, TimeSeriesID: "b", ID: "a"},
		{Time: 10, TimeSeriesID: "", ID: ""},
	}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareRefs(ordered[i], ordered[j]); got != want {
				t.Errorf("CompareRefs(%v, %v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestCursorAfter(t *testing.T) {
	c := Cursor{Time: 100, ID: "m"}
	for _, x := range []struct {
		t    int64
		id   string
		want bool
	}{
		{99, "a", true}, {100, "n", true}, {100, "m", false}, {100, "a", false}, {101, "z", false},
	} {
		if got := c.After(x.t, x.id); got != x.want {
			t.Errorf("After(%d, %q) = %v, want %v", x.t, x.id, got, x.want)
		}
	}
	if !(TimeRange{Start: 1, End: 3}).Contains(1) || (TimeRange{Start: 1, End: 3}).Contains(3) {
		t.Error("TimeRange must be [start, end)")
	}
}

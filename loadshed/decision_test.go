package loadshed

import "testing"

func TestBands(t *testing.T) {
	cases := map[int]string{-5: "0", 0: "0", 1: "1-9", 9: "1-9", 10: "10-19", 48: "40-49", 89: "80-89", 90: "90-100", 100: "90-100", 250: "90-100"}
	for score, want := range cases {
		if got := BandLabel(Band(score)); got != want {
			t.Errorf("band of %d = %q, want %q", score, got, want)
		}
	}
	if BandLabel(NumBands) != "invalid" {
		t.Error("out-of-range band label")
	}
}

func TestDecisionHeader(t *testing.T) {
	cases := []struct {
		d    Decision
		want string
	}{
		{Decision{Scope: ScopeGlobal, Cutoff: 48.8, Score: 90}, "global; cutoff=48; score=90"},
		{Decision{Scope: ScopeOrigin, Origin: "api", Cutoff: 0, Score: 1}, "origin; name=api; cutoff=0; score=1"},
		{Decision{Scope: ScopeChaos, Cutoff: 100, Score: 95}, "chaos; score=95"},
	}
	for _, c := range cases {
		if got := c.d.HeaderValue(); got != c.want {
			t.Errorf("header %q, want %q", got, c.want)
		}
	}
}

package deadline

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	now := time.Now()
	const timeout = time.Second
	for _, tc := range []struct {
		name         string
		armed, bound time.Time
		want         time.Time // zero: keep what is armed
	}{
		{"nothing armed", time.Time{}, time.Time{}, now.Add(1250 * time.Millisecond)},
		{"armed far enough", now.Add(1100 * time.Millisecond), time.Time{}, time.Time{}},
		{"armed too close", now.Add(900 * time.Millisecond), time.Time{}, now.Add(1250 * time.Millisecond)},
		{"armed past the slack (a far deadline of someone else's)", now.Add(time.Hour), time.Time{}, now.Add(1250 * time.Millisecond)},
		{"bound earlier than the slack", time.Time{}, now.Add(500 * time.Millisecond), now.Add(500 * time.Millisecond)},
		{"bound already armed", now.Add(500 * time.Millisecond), now.Add(500 * time.Millisecond), time.Time{}},
		{"bound moved earlier", now.Add(1100 * time.Millisecond), now.Add(time.Second), now.Add(time.Second)},
	} {
		d, ok := Due(now, tc.armed, timeout, tc.bound)
		if ok != !tc.want.IsZero() || (ok && !d.Equal(tc.want)) {
			t.Errorf("%s: Due = %v, %v; want %v", tc.name, d.Sub(now), ok, tc.want.Sub(now))
		}
	}
}

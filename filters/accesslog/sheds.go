package accesslog

import (
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

// isShed reports whether a request was refused by load shedding.
func isShed(c filters.Category) bool {
	return c == filters.CategoryShedGlobal || c == filters.CategoryShedOrigin || c == filters.CategoryShedChaos
}

// shedLines caps the access-log lines of shed requests per second and
// counts the rest. Lock-free: at the turn of a second a few extra lines may
// pass, which is harmless.
type shedLines struct {
	perSecond int64
	second    atomic.Int64 // the Unix second the count is for
	count     atomic.Int64 // lines taken in that second
	skipped   atomic.Int64 // not logged since the last line that was
}

// take reports whether a shed request ending at now may be logged, and if
// so how many were not logged since the previous line.
func (s *shedLines) take(now time.Time) (ok bool, skipped int64) {
	sec := now.Unix()
	if cur := s.second.Load(); cur != sec && s.second.CompareAndSwap(cur, sec) {
		s.count.Store(0)
	}
	if s.count.Add(1) > s.perSecond {
		s.skipped.Add(1)
		return false, 0
	}
	return true, s.skipped.Swap(0)
}

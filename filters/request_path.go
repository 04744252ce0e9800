package filters

import (
	"unsafe"

	"github.com/floodgate-dev/floodgate/internal/racebuild"
)

// maxKeptPathBuf bounds the path buffer a pooled Context keeps for its next
// request: a longer path is copied as usual, but its buffer is dropped on
// release so one odd request does not pin a large buffer in the pool.
const maxKeptPathBuf = 2048

// SetPath makes Path a view of a copy of raw in the Context's own buffer,
// so the request path costs no allocation. Like RequestID, such a Path is
// valid until the Context is released: whatever keeps it longer (a ring of
// recent requests, a map key, a goroutine that outlives the request) must
// copy it (strings.Clone). Strings derived from it without a copy (a
// substring, a normalizer's unchanged input, a route's rewrite that kept a
// suffix) share that lifetime. Call it at most once per request: a second
// call would change, under whoever holds it, the string the first made.
func (c *Context) SetPath(raw []byte) {
	if len(raw) == 0 {
		c.Path = ""
		return
	}
	c.pathBuf = append(c.pathBuf[:0], raw...)
	c.Path = unsafe.String(&c.pathBuf[0], len(c.pathBuf))
}

// releasePath readies the path buffer for the Context's next request. In a
// race-detector build it first overwrites the buffer, so a path kept past
// its request without a copy reads as an obviously wrong one there (and
// the write races with the late read) instead of as the next request's.
func (c *Context) releasePath() {
	if racebuild.Enabled {
		for i := range c.pathBuf {
			c.pathBuf[i] = '!'
		}
	}
	if cap(c.pathBuf) > maxKeptPathBuf {
		c.pathBuf = nil
	}
}

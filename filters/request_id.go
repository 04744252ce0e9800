package filters

import (
	"unsafe"

	"github.com/floodgate-dev/floodgate/internal/racebuild"
)

// requestIDBufSize is the longest request id kept in the Context itself: a
// generated id (32 hex digits), a UUID (36) and most trace ids fit.
const requestIDBufSize = 64

// SetRequestID makes id the request's id. An id that fits the Context's
// buffer is copied there and RequestID is a view of it, so an id costs no
// allocation; a longer one is copied to the heap. Call it at most once per
// request: a second call would change, under whoever holds it, the string a
// first one returned.
func (c *Context) SetRequestID(id []byte) {
	if len(id) == 0 || len(id) > len(c.idBuf) {
		c.RequestID = string(id)
		return
	}
	n := copy(c.idBuf[:], id)
	c.RequestID = unsafe.String(&c.idBuf[0], n)
}

// poisonRequestID overwrites a released Context's id buffer in a
// race-detector build, so an id kept past its request without a copy reads
// as an obviously wrong one there (and the write races with the late read)
// instead of as the next request's id.
func (c *Context) poisonRequestID() {
	if racebuild.Enabled {
		for i := range c.idBuf {
			c.idBuf[i] = '!'
		}
	}
}

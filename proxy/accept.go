package proxy

import (
	"sync/atomic"
	"time"
)

// acceptErrorLog rate-limits the accept failure log line: under fd
// exhaustion accept fails in a tight retry loop, and one line per second
// with a running count says everything.
const acceptErrorLogInterval = time.Second

// acceptErrors counts accept() failures the listener survived.
type acceptErrors struct {
	total   atomic.Int64
	lastLog atomic.Int64 // unix nanoseconds
}

// acceptError records a resource error accept() failed with (typically
// EMFILE: too many open files); the listener backs off and retries.
func (s *Server) acceptError(err error, retryIn time.Duration) {
	n := s.accepts.total.Add(1)
	now := time.Now().UnixNano()
	last := s.accepts.lastLog.Load()
	if now-last >= int64(acceptErrorLogInterval) && s.accepts.lastLog.CompareAndSwap(last, now) {
		s.logger.Error("accepting connections failed; backing off and retrying (existing connections are still served)",
			"err", err, "retry_in", retryIn, "failures_total", n, "open_connections", s.conns.Load())
	}
}

// AcceptErrors is how many times accepting a connection failed with a
// resource error (file descriptors, buffers) and was retried.
func (s *Server) AcceptErrors() int64 { return s.accepts.total.Load() }

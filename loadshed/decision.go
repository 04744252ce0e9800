package loadshed

import (
	"math"
	"strconv"
)

// Scope says which throttler produced a Decision.
type Scope uint8

// Scopes, in the order a request meets them.
const (
	ScopeNone Scope = iota
	ScopeChaos
	ScopeGlobal
	ScopeOrigin
)

// String returns the scope's label as used in headers and metrics.
// MarshalText makes a scope read as its name in JSON.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s Scope) String() string {
	switch s {
	case ScopeChaos:
		return "chaos"
	case ScopeGlobal:
		return "global"
	case ScopeOrigin:
		return "origin"
	}
	return "none"
}

// Decision is the outcome of one admission check.
type Decision struct {
	// Shed: reject the request now (503 + Retry-After + X-Floodgate-Shed).
	Shed bool
	// WouldShed: the scope is in dry-run and would have shed this request.
	// The request must be served normally.
	WouldShed bool
	Scope     Scope
	// Origin names the origin for ScopeOrigin decisions.
	Origin string
	Score  int
	// Cutoff is the published cutoff at decision time: scores above it are
	// shed. Overload is the scope's smoothed overload fraction (0..1).
	Cutoff   float64
	Overload float64
	// RetryAfter is the Retry-After value in whole seconds, set when Shed.
	RetryAfter int
	// Queued: the request holds a slot of the origin scope's enforcing
	// limiter (Origin.Acquire); release it with Origin.Release.
	Queued bool
}

// CutoffInt is the cutoff as the integer clients see: since scores are
// integers, "score > 48.8" and "score > 48" shed exactly the same requests.
func (d Decision) CutoffInt() int {
	return int(math.Floor(d.Cutoff))
}

// AppendHeader appends the X-Floodgate-Shed value to dst, e.g.
// "global; cutoff=48; score=90", "origin; name=api; cutoff=12; score=40"
// or "chaos; score=90". It allocates only if dst is too small.
func (d Decision) AppendHeader(dst []byte) []byte {
	dst = append(dst, d.Scope.String()...)
	if d.Scope == ScopeOrigin {
		dst = append(dst, "; name="...)
		dst = append(dst, d.Origin...)
	}
	if d.Scope != ScopeChaos {
		dst = append(dst, "; cutoff="...)
		dst = strconv.AppendInt(dst, int64(d.CutoffInt()), 10)
	}
	dst = append(dst, "; score="...)
	return strconv.AppendInt(dst, int64(d.Score), 10)
}

// HeaderValue is AppendHeader as a string, for callers that do not pool
// buffers.
func (d Decision) HeaderValue() string {
	var buf [64]byte
	return string(d.AppendHeader(buf[:0]))
}

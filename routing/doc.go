// Package routing owns the route table: matching requests on host (exact and
// wildcard), path (exact, segment prefix, regex), method and headers, in
// declared order; path normalization; and path/host rewrites. It is pure:
// no I/O and no HTTP library, so it is fast to test exhaustively.
package routing

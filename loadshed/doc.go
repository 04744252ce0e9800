// Package loadshed owns Floodgate's prioritized load shedding: it scores each
// request 0..100 from an ordered rule list (0 = most critical, never shed),
// turns overload signals into a per-scope cutoff along a cubic curve, and
// decides whether a request of a given score is admitted, shed, or (in
// dry-run) would have been shed.
//
// Two kinds of scope exist: one Global throttler (in-flight requests, open
// client connections, process or cgroup CPU) and one Origin throttler per
// origin name, created lazily (in-flight requests, error rate over a sliding
// window, mean latency against a target). A single background ticker samples
// and smooths every scope's signals and republishes its cutoff, so the
// per-request path (Score, Decide, Begin, End, Done) is a handful of atomic
// operations and allocates nothing.
//
// The package is transport-agnostic: the gateway's filter adapters implement
// the small Request interface over their HTTP library and call into a
// Shedder. Configuration (Config) is plain data with mapstructure tags and a
// Validate method; Shedder.Update swaps it in live without losing signal
// state.
package loadshed

// Package filters owns Floodgate's filter chain engine: the Filter contract,
// the pooled per-request Context, status categories, ordering of filters into
// immutable per-route chains, and the registry of named filter factories that
// operators extend. Built-in filters live in subpackages.
//
// A request runs three stages: inbound filters (route, score, shed, limit),
// one endpoint (proxy to an origin, static reply, TimeSeries store), and
// outbound filters. An inbound filter may answer the request itself; the
// endpoint is then skipped but outbound filters still run, so every response
// gets the same headers, metrics and log line.
package filters

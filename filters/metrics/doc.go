// Package metrics owns Floodgate's Prometheus instrumentation: one private
// registry holding every floodgate_* collector plus the Go and process
// collectors, typed methods the proxy, origins, shedding and rate-limiting
// code call to record what happened, pull collectors that read live state
// (in-flight counts, breaker states, shedding cutoffs) at scrape time, the
// /metrics handler, and the "metrics" outbound filter that records each
// request when it completes.
//
// Label values are bounded by construction: routes by their configured
// name (or "none"), statuses by class, categories by the fixed set in
// package filters; raw paths, hosts and client addresses never become
// labels.
package metrics

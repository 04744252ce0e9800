// Package origins owns everything the gateway knows about the backends it forwards to:
// the registry of named origins, their instance sets (static or discovered from Consul)
// published as immutable snapshots, instance selection (power-of-two-choices over a
// peak-EWMA load score, or round robin for comparison), per-instance circuit breakers
// with an Envoy-style panic threshold, the per-origin concurrency cap, the retry and
// hedging policies with their shared retry budget, active health checks, and the
// Attempt record the proxy keeps per upstream try.
//
// The package performs no HTTP forwarding itself and does not import fasthttp: the
// proxy owns connections and calls Pick / done / Budget / HedgeDelay around each
// attempt. See Origin.Pick for the per-request contract.
package origins

// Package proxy owns Floodgate's HTTP edge: the fasthttp server, the
// per-request driver that routes a request and runs its filter chain, the
// forwarding endpoint (hop-by-hop headers, X-Forwarded-*, streaming bodies
// both ways, timeouts, mapping failures to status categories), the static
// endpoint, and the upstream connection pools shared across config
// snapshots.
package proxy

package main

import "testing"

// benchBareConfig is compare.sh's floodgate-bare: every built-in filter
// off, so only the proxy endpoint runs; its cost against BenchmarkGatewayGET
// is the chain's, its profile the proxy core's.
const benchBareConfig = `
server: {listen: "127.0.0.1:0"}
access_log: {enabled: false, options: {output: %q}}
request_id: {enabled: false}
passport: {enabled: false}
passport_header: {enabled: false}
shed_global: {enabled: false}
shed_origin: {enabled: false}
shed_origin_release: {enabled: false}
chaos_global: {enabled: false}
chaos_origin: {enabled: false}
metrics: {enabled: false}
origins:
  bench:
    instances: [{address: %q}]
    lb: p2c
    max_conns_per_instance: 1024
    adaptive_limit: {enabled: false}
routes:
  - name: bench
    match: {path_prefix: /}
    origin: bench
`

// BenchmarkGatewayGETBare is a GET through the bare gateway (the proxy
// endpoint alone) to a loopback origin, 64 B bodies.
func BenchmarkGatewayGETBare(b *testing.B) {
	cb := newChainBenchConfig(b, 64, benchBareConfig)
	defer cb.close()
	for i := 0; i < 100; i++ {
		cb.do(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cb.do(b)
	}
}

package main

// What this gateway is built with. Every kind the config chooses by name
// registers itself from its package's init; importing the package here is
// the one line that compiles it in.
//
//	endpoint kinds  origin, static (proxy); timeseries (filters/eventstore)
//	built-ins       request_id, passport, shed_global, chaos_global, chaos_origin, shed_origin,
//	                shed_origin_release, metrics, passport_header, access_log
//	                (installed by rule; order table in filters/order.go)
//	filters         rate_limit, concurrency_limit, stamp (listed in config by name)
//	rate-limit      local, redis (ratelimit; chosen per policy)
//	balancers       p2c, round_robin (origins)
//	discovery       static instances, consul (origins)
//	storage engines pebble (embedded, timeseries); cassandra (timeseries/cassandraengine),
//	                chosen per namespace with timeseries.namespaces.NAME.engine
//
// Operators' own filters go in filters/custom (already imported) or in a
// package added below.
import (
	_ "github.com/floodgate-dev/floodgate/filters/accesslog"
	_ "github.com/floodgate-dev/floodgate/filters/chaos"
	_ "github.com/floodgate-dev/floodgate/filters/concurrencylimit"
	_ "github.com/floodgate-dev/floodgate/filters/custom"
	_ "github.com/floodgate-dev/floodgate/filters/eventstore"
	_ "github.com/floodgate-dev/floodgate/filters/metrics"
	_ "github.com/floodgate-dev/floodgate/filters/passport"
	_ "github.com/floodgate-dev/floodgate/filters/ratelimit"
	_ "github.com/floodgate-dev/floodgate/filters/requestid"
	_ "github.com/floodgate-dev/floodgate/filters/shed"
	_ "github.com/floodgate-dev/floodgate/proxy"
	_ "github.com/floodgate-dev/floodgate/timeseries/cassandraengine"
)

// Package timeseries owns the TimeSeries event store's API layer: the JSON request and
// response types, validation, namespace configuration, partitioning of events into time
// slices / time buckets / event buckets, the asynchronous write queue, scatter-gather reads,
// index search and distinct aggregation, and retention. Persistence is delegated to a
// storage.Engine (the embedded default is pebbleengine).
//
// The entry point is Service.Serve (or Handle): transport-neutral, so the gateway's fasthttp
// endpoint and cmd/timeseries share it without this package importing fasthttp.
package timeseries

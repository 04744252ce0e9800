// Package eventstore owns the gateway's "timeseries" route endpoint: it
// serves the embedded TimeSeries store (timeseries) over HTTP from
// inside the filter chain. It owns the HTTP edge of the store only: method
// and operation checks, the request body limit, the namespace allowlist and
// the mapping of the store's answers to status categories. Validation,
// storage and the JSON contract stay in timeseries.
package eventstore

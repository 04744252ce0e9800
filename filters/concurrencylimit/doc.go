// Package concurrencylimit owns the "concurrency_limit" filter: at most a
// policy's Max requests with the same key (client IP, header, route; the
// rate_limit filter's key syntax and encoding) are in flight at once, and
// one more is answered 429 with category concurrency_limited. A slot is
// held from the filter until the response is complete, and released on
// every path: success, error, a client gone mid-response, a panic.
//
// The slots are counted by the long-lived ratelimit.Limiters, locally or in
// Redis across the fleet (see package ratelimit).
package concurrencylimit

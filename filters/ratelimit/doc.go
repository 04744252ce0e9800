// Package ratelimit owns the "rate_limit" filter: it applies a named
// token-bucket policy to each request, answers 429 with Retry-After when
// the request's bucket is empty, and reports quota in RateLimit-* response
// headers. Building a request's bucket key (client IP, headers, route)
// from the Context lives here, as do the Prometheus metrics of every
// rate-limit and concurrency policy; the policies, their validation, the
// long-lived bucket tables and the Redis backend live in the fasthttp-free
// package github.com/floodgate-dev/floodgate/ratelimit, which the config
// schema can import without a cycle.
package ratelimit

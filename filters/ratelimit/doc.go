// Package ratelimit owns the "rate_limit" filter: it applies a named
// token-bucket policy to each request, answers 429 with Retry-After when
// the request's bucket is empty, and reports quota in RateLimit-* response
// headers. Building a request's bucket key (client IP, headers, route)
// from the Context lives here; the policies, their validation and the
// long-lived bucket tables live in the fasthttp-free subpackage limits,
// which the config schema can import without a cycle.
package ratelimit

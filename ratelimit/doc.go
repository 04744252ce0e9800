// Package ratelimit owns Floodgate's rate-limit policies and buckets: the
// policy schema and its validation, and Limiters, the long-lived service
// holding per-key token buckets (golang.org/x/time/rate) for every policy
// with bounded memory (idle expiry, a key cap with a shared overflow
// bucket) and live reconfiguration that keeps each key's tokens.
//
// Buckets are driven with explicit timestamps from an injectable clock, so
// the same code runs against the wall clock in the gateway and a fake one
// in tests. It has no HTTP dependency; package filters/ratelimit adapts it to the
// filter chain.
package ratelimit

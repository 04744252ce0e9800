package ratelimit

import (
	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// AppendKey encodes c's key under spec onto dst exactly as rate_limit keys
// its buckets (see appendKey), so the concurrency_limit filter counts the
// same clients the same way.
func AppendKey(dst []byte, spec *ratelimit.KeySpec, c *filters.Context) []byte {
	return appendKey(dst, spec, c)
}

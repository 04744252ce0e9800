package origins

import "slices"

// RetryPolicy decides whether a failed attempt may be tried again. The proxy must also
// win Budget().TryRetry() and pick with the tried instances excluded.
type RetryPolicy struct {
	attempts int
	statuses []int
}

func newRetryPolicy(cfg RetryConfig) RetryPolicy {
	return RetryPolicy{attempts: cfg.Attempts, statuses: slices.Clone(cfg.OnStatuses)}
}

// MaxAttempts is the total number of tries allowed, the first included.
func (p RetryPolicy) MaxAttempts() int { return p.attempts }

// RetryCheck describes the attempt that just failed.
type RetryCheck struct {
	Method          string // request method, e.g. "GET"
	RouteIdempotent bool   // the route declares the request safe to repeat
	Attempts        int    // attempts made so far, the failed one included
	Outcome         Outcome
	Status          int
	// ResponseStarted: response bytes already reached the client (streaming); a retry
	// would corrupt the response.
	ResponseStarted bool
}

// IsIdempotentMethod reports whether RFC 9110 defines the method as idempotent.
func IsIdempotentMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// Idempotent reports whether a request may be sent twice: by method or by route.
func (c RetryCheck) Idempotent() bool { return c.RouteIdempotent || IsIdempotentMethod(c.Method) }

// Retryable reports whether the failed attempt qualifies for another try. Only
// failures where the instance cannot have acted on the request, or said so with a
// configured status, qualify: connect errors, resets before any response, and the
// configured statuses (default 503). Timeouts do not: the instance may still be
// working, and retrying a slow origin multiplies its load. The proxy should report a
// dial timeout as OutcomeConnectError.
func (p RetryPolicy) Retryable(c RetryCheck) bool {
	if c.ResponseStarted || c.Attempts >= p.attempts || !c.Idempotent() {
		return false
	}
	switch c.Outcome {
	case OutcomeConnectError, OutcomeReset:
		return true
	case OutcomeStatus5xx, OutcomeSuccess:
		return slices.Contains(p.statuses, c.Status)
	}
	return false
}

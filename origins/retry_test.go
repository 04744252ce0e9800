package origins

import "testing"

func TestRetryable(t *testing.T) {
	p := newRetryPolicy(RetryConfig{Attempts: 3, OnStatuses: []int{503}})
	base := RetryCheck{Method: "GET", Attempts: 1, Outcome: OutcomeConnectError}
	cases := []struct {
		name string
		mod  func(*RetryCheck)
		want bool
	}{
		{"connect error GET", func(*RetryCheck) {}, true},
		{"reset before response", func(c *RetryCheck) { c.Outcome = OutcomeReset }, true},
		{"reset after bytes reached client", func(c *RetryCheck) { c.Outcome = OutcomeReset; c.ResponseStarted = true }, false},
		{"503", func(c *RetryCheck) { c.Outcome = OutcomeStatus5xx; c.Status = 503 }, true},
		{"500 not configured", func(c *RetryCheck) { c.Outcome = OutcomeStatus5xx; c.Status = 500 }, false},
		{"timeout", func(c *RetryCheck) { c.Outcome = OutcomeTimeout }, false},
		{"POST", func(c *RetryCheck) { c.Method = "POST" }, false},
		{"POST on idempotent route", func(c *RetryCheck) { c.Method = "POST"; c.RouteIdempotent = true }, true},
		{"attempts exhausted", func(c *RetryCheck) { c.Attempts = 3 }, false},
		{"canceled", func(c *RetryCheck) { c.Outcome = OutcomeCanceled }, false},
	}
	for _, tc := range cases {
		c := base
		tc.mod(&c)
		if got := p.Retryable(c); got != tc.want {
			t.Errorf("%s: got %v want %v", tc.name, got, tc.want)
		}
	}
}

func TestRetryOnConfiguredSuccessStatus(t *testing.T) {
	p := newRetryPolicy(RetryConfig{Attempts: 2, OnStatuses: []int{429}})
	if !p.Retryable(RetryCheck{Method: "GET", Attempts: 1, Outcome: OutcomeForStatus(429), Status: 429}) {
		t.Fatal("429 configured as retryable")
	}
}

package origins

import "time"

// Outcome classifies how one attempt to an instance ended.
type Outcome uint8

// Outcomes. Failure outcomes feed the breaker and the latency penalty; Canceled (the
// client went away, or an attempt was given up before it was sent) feeds neither,
// because it says nothing about the instance. An attempt that lost a hedge race
// still reports how it really ended: its latency is exactly what balancing needs.
const (
	OutcomeSuccess      Outcome = iota // a response, status < 500
	OutcomeConnectError                // dial failed or refused; nothing was sent
	OutcomeTimeout                     // connect or response timeout
	OutcomeReset                       // connection reset/closed before a full response
	OutcomeStatus5xx                   // the instance answered with 5xx
	OutcomeCanceled                    // abandoned by us; not the instance's fault
)

var outcomeNames = [...]string{
	OutcomeSuccess:      "success",
	OutcomeConnectError: "connect_error",
	OutcomeTimeout:      "timeout",
	OutcomeReset:        "reset",
	OutcomeStatus5xx:    "status_5xx",
	OutcomeCanceled:     "canceled",
}

// String returns the snake_case name used in logs and metric labels.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Failed reports whether the outcome counts against the instance.
func (o Outcome) Failed() bool {
	switch o {
	case OutcomeConnectError, OutcomeTimeout, OutcomeReset, OutcomeStatus5xx:
		return true
	}
	return false
}

// OutcomeForStatus classifies a received HTTP status.
func OutcomeForStatus(status int) Outcome {
	if status >= 500 {
		return OutcomeStatus5xx
	}
	return OutcomeSuccess
}

// Result is what the proxy reports through the done callback of a pick.
type Result struct {
	// Latency of the attempt; if zero, the time since the pick is used.
	Latency time.Duration
	Outcome Outcome
	// Status is the HTTP status if a response arrived, else 0.
	Status int
	// HeadersOnly marks an interim report: the response headers arrived
	// and the body is still streaming. The attempt stops counting as
	// awaiting an answer for the adaptive limit (its Latency, the time to
	// headers, is the sample) but stays in flight until the final report.
	HeadersOnly bool
}

// Attempt is one upstream try, kept in the request context so an access log or a
// failure log can tell the whole story of a request.
type Attempt struct {
	Origin   string // the instance's origin: the request's, or a group member's
	Instance string // host:port
	Start    time.Time
	Duration time.Duration
	Outcome  Outcome
	Status   int
	Hedge    bool // started by the hedge timer while another attempt was in flight
	Retry    bool // started after a failed attempt
}

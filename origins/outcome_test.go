package origins

import "testing"

func TestOutcomeClassification(t *testing.T) {
	failed := map[Outcome]bool{
		OutcomeSuccess: false, OutcomeConnectError: true, OutcomeTimeout: true,
		OutcomeReset: true, OutcomeStatus5xx: true, OutcomeCanceled: false,
	}
	for o, want := range failed {
		if o.Failed() != want {
			t.Errorf("%v.Failed() = %v", o, !want)
		}
		if o.String() == "unknown" {
			t.Errorf("outcome %d has no name", o)
		}
	}
	if Outcome(200).String() != "unknown" {
		t.Error("out-of-range outcome must not panic and must say unknown")
	}
	if OutcomeForStatus(404) != OutcomeSuccess || OutcomeForStatus(503) != OutcomeStatus5xx {
		t.Error("status classification")
	}
}

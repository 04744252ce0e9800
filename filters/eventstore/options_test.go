package eventstore

import (
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero options: %v", err)
	}
	err := Options{MaxBodySize: -1, Namespaces: []string{"demo", "", "demo"}}.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"max_body_size:", "namespaces[1]: must not be empty", `namespaces[2]: "demo" is listed twice`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := (Options{}).maxBody(); got != DefaultMaxBodySize {
		t.Errorf("default max body %d", got)
	}
}

package eventstore

import (
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

func TestPeekNamespaceMatchesStoreDecoding(t *testing.T) {
	cases := []struct {
		body    string
		want    string
		decoded bool
	}{
		{`{"namespace":"demo","events":[{"a":[1,{"b":"}"}]}]}`, "demo", true},
		{`{"events":[],"namespace":"late"}`, "late", true},
		{`{"namespace":"a","namespace":"b"}`, "", false}, // the store refuses duplicates
		{`{"namespace":"a","NAMESPACE":"b"}`, "a", true}, // names match exactly, as in the store
		{`{"namespace":"a","nameſpace":"b"}`, "a", true}, // no Unicode folding either
		{`{"n\u0061mespace":"esc"}`, "esc", true},
		{`{"namespace":null}`, "", true},
		{"{\"namespace\":\"a\xff\"}", "", false}, // invalid UTF-8: the store refuses it
		{`{"namespace":"a"`, "", false},
		{`{"namespace":7}`, "", false},
		{``, "", false},
	}
	for _, tc := range cases {
		got, ok := peekNamespace([]byte(tc.body))
		if ok != tc.decoded || (ok && got != tc.want) {
			t.Errorf("peekNamespace(%s) = %q, %v; want %q, %v", tc.body, got, ok, tc.want, tc.decoded)
		}
	}
}

func TestAllowlist(t *testing.T) {
	a := newAllowlist([]string{"demo"})
	for body, want := range map[string]bool{
		`{"namespace":"demo"}`:   true,
		`{"namespace":"secret"}`: false,
		`{"events":[]}`:          true, // no namespace: the store answers 400
		`not json`:               true, // the store answers 400
	} {
		if _, ok := a.allows([]byte(body)); ok != want {
			t.Errorf("allows(%s) = %v, want %v", body, ok, want)
		}
	}
	if _, ok := newAllowlist(nil).allows([]byte(`{"namespace":"anything"}`)); !ok {
		t.Error("an empty allowlist must allow every namespace")
	}
}

// FuzzPeekNamespace checks the allowlist's peek against the store's JSON
// rules: whenever the store's decoder would act on a namespace, the peek
// names the same one, so a route cannot be told one namespace while the
// store writes another.
func FuzzPeekNamespace(f *testing.F) {
	for _, s := range []string{
		`{"namespace":"demo","events":[{"a":[1,{"b":"}"}]}]}`,
		`{"namespace":"a","namespace":"b"}`,
		`{"namespace":"a","NAMESPACE":"b"}`,
		`{"namespace":"a","nameſpace":"b"}`,
		`{"n\u0061mespace":"esc","x":"\"namespace\":\"no\""}`,
		`{"namespace":"a","namespace":null}`,
		`{"namespace":"\u00e9t\u00e9"}`,
		` { "events" : [ ] , "namespace" : "x" } `,
		`{}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		peeked, ok := peekNamespace(body)
		var store struct {
			Namespace string `json:"namespace"`
		}
		err := jsonv2.Unmarshal(body, &store)
		if err == nil && (!ok || peeked != store.Namespace) {
			t.Fatalf("store decodes namespace %q, peek %q (%v) for %q", store.Namespace, peeked, ok, body)
		}
		if ok && peeked != "" && err != nil {
			t.Fatalf("peek %q for a body the store refuses (%v): %q", peeked, err, body)
		}
	})
}

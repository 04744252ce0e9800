package eventstore

import "testing"

func TestPeekNamespaceMatchesStoreDecoding(t *testing.T) {
	cases := []struct {
		body    string
		want    string
		decoded bool
	}{
		{`{"namespace":"demo","events":[{"a":[1,{"b":"}"}]}]}`, "demo", true},
		{`{"events":[],"namespace":"late"}`, "late", true},
		{`{"namespace":"a","namespace":"b"}`, "b", true},
		{`{"namespace":"a","NAMESPACE":"b"}`, "b", true},
		{`{"namespace":"a","nameſpace":"b"}`, "b", true}, // Unicode folding: ſ folds to s
		{`{"n\u0061mespace":"esc"}`, "esc", true},
		{`{"namespace":"a","namespace":null}`, "a", true},
		{`{"namespace":"a"} trailing`, "a", true}, // the store decodes the first value too
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

// FuzzScanNamespace checks the fast scanner against encoding/json: on any
// body the store's decoder accepts, a confident scan must agree with it.
func FuzzScanNamespace(f *testing.F) {
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
		fast, ok := scanNamespace(body)
		if !ok {
			return
		}
		exact, decoded := decodeNamespace(body)
		if decoded && exact != fast {
			t.Fatalf("scan %q, encoding/json %q for %q", fast, exact, body)
		}
	})
}

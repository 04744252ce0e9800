package eventstore

import (
	"bytes"

	"github.com/go-json-experiment/json/jsontext"
)

// allowlist is the set of namespaces one route may serve; nil allows all.
type allowlist map[string]struct{}

func newAllowlist(names []string) allowlist {
	if len(names) == 0 {
		return nil
	}
	a := make(allowlist, len(names))
	for _, n := range names {
		a[n] = struct{}{}
	}
	return a
}

// allows reports whether the body's namespace may be served. A body the
// store will refuse before touching any namespace (invalid JSON, a
// duplicate or missing namespace) is let through: the store answers it
// with a better message.
func (a allowlist) allows(body []byte) (ns string, ok bool) {
	if a == nil {
		return "", true
	}
	ns, decoded := peekNamespace(body)
	if !decoded || ns == "" {
		return ns, true
	}
	_, ok = a[ns]
	return ns, ok
}

// peekNamespace returns the namespace the store will act on for body, and
// false when the store would refuse the body whatever it names.
//
// It reads the top-level members with the same JSON rules as the store's
// decoder (timeseries/decode.go): member names match exactly (no case
// folding), a duplicate name or invalid UTF-8 is an error, escapes are
// decoded. Values are skipped without being decoded.
func peekNamespace(body []byte) (string, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	tok, err := dec.ReadToken()
	if err != nil || tok.Kind() != '{' {
		return "", false
	}
	ns := ""
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return "", false
		}
		if name.String() != "namespace" {
			if dec.SkipValue() != nil {
				return "", false
			}
			continue
		}
		v, err := dec.ReadToken()
		if err != nil {
			return "", false
		}
		switch v.Kind() {
		case '"':
			ns = v.String()
		case 'n': // null: the store sees no namespace and refuses it
		default:
			return "", false // wrong type: the store refuses it
		}
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return "", false
	}
	return ns, true
}

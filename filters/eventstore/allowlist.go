package eventstore

import (
	"bytes"
	"encoding/json"
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

// allows reports whether the body's namespace may be served. An
// undecodable body or a missing namespace is let through because the store
// refuses both (400) before touching any namespace, with a better message.
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
// false when the body does not decode (the store then rejects it too).
//
// The answer must be the one the store's decoder reaches, not merely the
// first "namespace" key: encoding/json lets the last duplicate key win,
// matches keys case-insensitively (with Unicode folding: "nameſpace"
// counts), unescapes keys, and treats null as "leave unchanged". A
// first-match peek could be told "demo" while the store writes elsewhere.
// scanNamespace handles well-formed bodies without allocating; anything it
// is unsure of goes to encoding/json itself.
func peekNamespace(body []byte) (string, bool) {
	if ns, ok := scanNamespace(body); ok {
		return ns, true
	}
	return decodeNamespace(body)
}

// namespaceOnly decodes the one field the allowlist needs.
type namespaceOnly struct {
	Namespace string `json:"namespace"`
}

// decodeNamespace is the exact (slower, copying) path: the store's own
// decoder, which also decodes only the first JSON value.
func decodeNamespace(body []byte) (string, bool) {
	var v namespaceOnly
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); err != nil {
		return "", false
	}
	return v.Namespace, true
}

// scanNamespace walks the top-level object's keys, skipping values
// without decoding them. false means "not sure": the caller falls back
// to encoding/json. It may accept some invalid JSON; that is harmless,
// because the store refuses invalid JSON whatever namespace it names.
// For JSON the store accepts, it must agree with encoding/json.
func scanNamespace(b []byte) (string, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i = skipSpace(b, i+1)
	var ns []byte
	if i < len(b) && b[i] == '}' {
		return "", true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		end, escaped, ok := scanString(b, i)
		if !ok {
			return "", false
		}
		key := b[i:end]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipSpace(b, i+1)
		vstart := i
		if i, ok = skipValue(b, i); !ok {
			return "", false
		}
		isNS, ok := isNamespaceKey(key, escaped)
		if !ok {
			return "", false
		}
		if isNS {
			switch v := b[vstart:i]; v[0] {
			case '"':
				ns = v
			case 'n': // null leaves the field unchanged
			default:
				return "", false // wrong type: the store refuses it
			}
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return "", false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return "", false
		}
		i = skipSpace(b, i+1)
	}
	if ns == nil {
		return "", true
	}
	return unquote(ns)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at b[i]
// (a quote) and whether it holds an escape.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped, true
		}
	}
	return 0, false, false
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _, ok := scanString(b, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, i > start
		}
		i++
	}
	return 0, false
}

// isNamespaceKey matches a quoted key the way encoding/json matches field
// names (bytes.EqualFold); escaped keys are unescaped first.
func isNamespaceKey(quoted []byte, escaped bool) (match, ok bool) {
	const name = "namespace"
	if !escaped {
		k := quoted[1 : len(quoted)-1]
		// "ſ" (2 bytes) folds to "s", so a folded match can be 10 bytes.
		if len(k) < len(name) || len(k) > len(name)+8 {
			return false, true
		}
		return bytes.EqualFold(k, []byte(name)), true
	}
	var k string
	if json.Unmarshal(quoted, &k) != nil {
		return false, false
	}
	return bytes.EqualFold([]byte(k), []byte(name)), true
}

// unquote decodes a JSON string value, taking the allocation-free path
// for plain ASCII.
func unquote(quoted []byte) (string, bool) {
	raw := quoted[1 : len(quoted)-1]
	for _, c := range raw {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			var s string
			if json.Unmarshal(quoted, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(raw), true
}

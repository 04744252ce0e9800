package decode

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// EnvOverrides applies environment overrides to tree, a config document as
// YAML parsed it, before it is decoded. A variable PREFIX_A_B_C sets the
// key path a.b.c; the path is found by matching the name's words against
// the schema type's mapstructure keys (which may themselves hold
// underscores: PREFIX_SERVER_READ_HEADER_TIMEOUT is
// server.read_header_timeout). Map entries (origins.users) and list
// elements (routes.0) are reachable when the document already has them;
// under a free-form map (filter options) the remaining words name one key.
// Values stay strings: the decode hooks turn them into the field's type
// with the same rules as YAML values ("250ms", "4MiB", "true"). A list of
// scalars takes a comma-separated value.
//
// It returns the key paths it set, and the variables with the prefix that
// name no key (FLOODGATE_CONFIG, a typo), sorted.
func EnvOverrides(tree map[string]any, schema reflect.Type, prefix string, environ []string) (applied, unmatched []string) {
	environ = slices.Clone(environ)
	slices.Sort(environ)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		rest, hasPrefix := strings.CutPrefix(name, prefix+"_")
		// An empty value is unset, as in most tools that read the environment.
		if !ok || !hasPrefix || rest == "" || value == "" {
			continue
		}
		words := strings.Split(strings.ToLower(rest), "_")
		steps, found := findKey(words, schema, tree)
		if !found {
			unmatched = append(unmatched, name)
			continue
		}
		setKey(tree, steps, value)
		applied = append(applied, stepsPath(steps))
	}
	return applied, unmatched
}

// EnvKeys lists the scalar key paths of schema that an environment
// variable reaches without a document (struct fields only; map entries and
// list elements depend on the document). It is what the README's list of
// overridable keys is checked against.
func EnvKeys(schema reflect.Type) []string {
	var keys []string
	var walk func(t reflect.Type, at string)
	walk = func(t reflect.Type, at string) {
		t = deref(t)
		if isScalar(t) {
			keys = append(keys, at)
			return
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			tag, opts := fieldTag(f)
			switch {
			case opts == "squash":
				walk(f.Type, at)
			case tag != "" && opts != "remain":
				walk(f.Type, JoinPath(at, tag))
			}
		}
	}
	walk(schema, "")
	return keys
}

type keyStep struct {
	key   string
	index int // >= 0 for a list element
}

func findKey(words []string, t reflect.Type, node any) ([]keyStep, bool) {
	t = deref(t)
	if len(words) == 0 {
		return nil, isScalar(t) || t.Kind() == reflect.Interface
	}
	switch t.Kind() {
	case reflect.Struct:
		m, _ := node.(map[string]any)
		var remain *reflect.StructField
		for i := range t.NumField() {
			f := t.Field(i)
			tag, opts := fieldTag(f)
			switch opts {
			case "remain":
				remain = &f
				continue
			case "squash":
				if steps, ok := findKey(words, f.Type, node); ok {
					return steps, true
				}
				continue
			}
			if tag == "" {
				continue
			}
			if rest, ok := cutWords(words, tag); ok {
				key := existingKey(m, tag)
				if steps, ok := findKey(rest, f.Type, m[key]); ok {
					return append([]keyStep{{key: key, index: -1}}, steps...), true
				}
			}
		}
		if remain != nil {
			// The keys a struct does not name: the document's own, or
			// (for a map of sections) a new one whose settings the rest
			// of the name reaches.
			elem := reflect.TypeFor[any]()
			if remain.Type.Kind() == reflect.Map {
				elem = remain.Type.Elem()
			}
			if steps, ok := findInMap(words, elem, m, false); ok {
				return steps, true
			}
			if deref(elem).Kind() == reflect.Struct {
				for i := 1; i < len(words); i++ {
					if steps, ok := findKey(words[i:], elem, nil); ok {
						return append([]keyStep{{key: strings.Join(words[:i], "_"), index: -1}}, steps...), true
					}
				}
			}
		}
	case reflect.Map:
		m, _ := node.(map[string]any)
		return findInMap(words, t.Elem(), m, deref(t.Elem()).Kind() == reflect.Interface)
	case reflect.Slice, reflect.Array:
		list, _ := node.([]any)
		if i, err := strconv.Atoi(words[0]); err == nil && i >= 0 && i < len(list) {
			if steps, ok := findKey(words[1:], t.Elem(), list[i]); ok {
				return append([]keyStep{{index: i}}, steps...), true
			}
		}
	case reflect.Interface:
		switch n := node.(type) {
		case map[string]any:
			return findInMap(words, t, n, true)
		case []any:
			return findKey(words, reflect.TypeFor[[]any](), n)
		case nil:
			return []keyStep{{key: strings.Join(words, "_"), index: -1}}, true
		}
	}
	return nil, false
}

// findInMap matches the document's existing keys; a free-form map also
// takes a new key made of all remaining words.
func findInMap(words []string, elem reflect.Type, m map[string]any, freeForm bool) ([]keyStep, bool) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if rest, ok := cutWords(words, k); ok {
			if steps, ok := findKey(rest, elem, m[k]); ok {
				return append([]keyStep{{key: k, index: -1}}, steps...), true
			}
		}
	}
	if freeForm {
		return []keyStep{{key: strings.Join(words, "_"), index: -1}}, true
	}
	return nil, false
}

func setKey(tree map[string]any, steps []keyStep, value string) {
	var node any = tree
	for i, s := range steps {
		last := i == len(steps)-1
		if s.index >= 0 {
			list := node.([]any)
			if last {
				list[s.index] = value
				return
			}
			node = ensureContainer(list[s.index], steps[i+1], func(v any) { list[s.index] = v })
			continue
		}
		m := node.(map[string]any)
		if last {
			m[s.key] = value
			return
		}
		node = ensureContainer(m[s.key], steps[i+1], func(v any) { m[s.key] = v })
	}
}

// ensureContainer returns v if it can hold the next step, else a new map
// stored with put.
func ensureContainer(v any, next keyStep, put func(any)) any {
	if next.index >= 0 {
		return v // findKey only indexes existing lists
	}
	if m, ok := v.(map[string]any); ok {
		return m
	}
	m := map[string]any{}
	put(m)
	return m
}

func stepsPath(steps []keyStep) string {
	var b strings.Builder
	for _, s := range steps {
		if s.index >= 0 {
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

// cutWords reports whether words start with key's words (case-insensitive)
// and returns the rest.
func cutWords(words []string, key string) ([]string, bool) {
	kw := strings.Split(strings.ToLower(key), "_")
	if len(kw) > len(words) {
		return nil, false
	}
	for i := range kw {
		if kw[i] != words[i] {
			return nil, false
		}
	}
	return words[len(kw):], true
}

// existingKey returns the document's spelling of key (YAML keys match
// struct keys case-insensitively), or key itself.
func existingKey(m map[string]any, key string) string {
	if _, ok := m[key]; ok {
		return key
	}
	for k := range m {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return key
}

func fieldTag(f reflect.StructField) (name, opts string) {
	if !f.IsExported() {
		return "", ""
	}
	name, opts, _ = strings.Cut(f.Tag.Get("mapstructure"), ",")
	if name == "-" {
		return "", ""
	}
	return name, opts
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isScalar reports types one environment value can set: numbers, strings,
// booleans, units, and lists of those (comma-separated).
func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	case reflect.Slice:
		e := deref(t.Elem())
		return e.Kind() != reflect.Slice && e.Kind() != reflect.Struct && e.Kind() != reflect.Map && isScalar(e)
	}
	return false
}

package timeseries

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

const (
	maxQueryDepth  = 8
	maxQueryLeaves = 32
)

// qnode is a compiled search query: a leaf (field condition) or an AND/OR of children.
type qnode struct {
	and, or  []*qnode
	field    string
	kind     storage.IndexKind
	match    storage.IndexMatch
	isLeaf   bool
	fieldKey []byte
}

// compileQuery validates q against the namespace's index mapping; errors name the JSON path.
func compileQuery(q *SearchQuery, mapping map[string]FieldType, path string) (*qnode, *apiError) {
	if q == nil {
		return nil, badField(path, "is required")
	}
	leaves := 0
	return compileNode(q, mapping, path, 1, &leaves)
}

func compileNode(q *SearchQuery, mapping map[string]FieldType, path string, depth int, leaves *int) (*qnode, *apiError) {
	if depth > maxQueryDepth {
		return nil, badField(path, fmt.Sprintf("query is nested deeper than %d levels", maxQueryDepth))
	}
	set := 0
	for _, b := range []bool{q.And != nil, q.Or != nil, q.Equals != nil, q.Range != nil} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, badField(path, "must have exactly one of and, or, equals, range")
	}
	switch {
	case q.And != nil || q.Or != nil:
		kids, name := q.And, "and"
		if q.Or != nil {
			kids, name = q.Or, "or"
		}
		if len(kids) == 0 {
			return nil, badField(path+"."+name, "must hold at least one query")
		}
		n := &qnode{}
		for i := range kids {
			c, err := compileNode(&kids[i], mapping, fmt.Sprintf("%s.%s[%d]", path, name, i), depth+1, leaves)
			if err != nil {
				return nil, err
			}
			if name == "and" {
				n.and = append(n.and, c)
			} else {
				n.or = append(n.or, c)
			}
		}
		return n, nil
	}
	if *leaves++; *leaves > maxQueryLeaves {
		return nil, badField(path, fmt.Sprintf("query has more than %d conditions", maxQueryLeaves))
	}
	if q.Equals != nil {
		return compileEquals(q.Equals, mapping, path+".equals")
	}
	return compileRange(q.Range, mapping, path+".range")
}

func indexedField(b64 string, mapping map[string]FieldType, path string) (string, FieldType, *apiError) {
	k, ok := decodeB64(b64)
	if !ok || len(k) == 0 {
		return "", "", badField(path+".eventItemKey", "must be non-empty base64")
	}
	ft, ok := mapping[string(k)]
	if !ok {
		return "", "", badField(path+".eventItemKey", fmt.Sprintf("field %q is not indexed in this namespace (index.field_mapping)", k))
	}
	return string(k), ft, nil
}

func compileEquals(e *EqualsQuery, mapping map[string]FieldType, path string) (*qnode, *apiError) {
	field, ft, aerr := indexedField(e.EventItemKey, mapping, path)
	if aerr != nil {
		return nil, aerr
	}
	v, ok := decodeB64(e.EventItemValue)
	if !ok {
		return nil, badField(path+".eventItemValue", "is not valid base64")
	}
	entry, msg := indexEntry(field, ft, v)
	if msg != "" {
		return nil, badField(path+".eventItemValue", msg)
	}
	n := &qnode{isLeaf: true, field: field, fieldKey: []byte(field), kind: entry.Kind}
	if ft == FieldInteger {
		n.match = storage.IndexMatch{Min: entry.Int, Max: entry.Int}
	} else {
		n.match = storage.IndexMatch{Equals: entry.Value}
	}
	return n, nil
}

func compileRange(r *RangeQuery, mapping map[string]FieldType, path string) (*qnode, *apiError) {
	field, ft, aerr := indexedField(r.EventItemKey, mapping, path)
	if aerr != nil {
		return nil, aerr
	}
	if ft != FieldInteger {
		return nil, badField(path+".eventItemKey", fmt.Sprintf("range needs an INTEGER field; %q is %s", field, ft))
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if r.Gt == nil && r.Gte == nil && r.Lt == nil && r.Lte == nil {
		return nil, badField(path, "needs at least one of gt, gte, lt, lte")
	}
	if r.Gt != nil && r.Gte != nil || r.Lt != nil && r.Lte != nil {
		return nil, badField(path, "give at most one lower bound (gt|gte) and one upper bound (lt|lte)")
	}
	if r.Gte != nil {
		lo = *r.Gte
	}
	if r.Gt != nil {
		if *r.Gt == math.MaxInt64 {
			return nil, badField(path+".gt", "matches nothing")
		}
		lo = *r.Gt + 1
	}
	if r.Lte != nil {
		hi = *r.Lte
	}
	if r.Lt != nil {
		if *r.Lt == math.MinInt64 {
			return nil, badField(path+".lt", "matches nothing")
		}
		hi = *r.Lt - 1
	}
	if lo > hi {
		return nil, badField(path, "lower bound is above upper bound")
	}
	return &qnode{isLeaf: true, field: field, fieldKey: []byte(field), kind: storage.KindInteger, match: storage.IndexMatch{Min: lo, Max: hi}}, nil
}

// matches re-checks the query against a loaded event, so an index posting left behind by an
// overwritten event (same idempotency key, different value) never yields a wrong result.
func (n *qnode) matches(ev *storage.Event) bool {
	switch {
	case n.and != nil:
		for _, c := range n.and {
			if !c.matches(ev) {
				return false
			}
		}
		return true
	case n.or != nil:
		for _, c := range n.or {
			if c.matches(ev) {
				return true
			}
		}
		return false
	}
	for _, it := range ev.Items {
		if !bytes.Equal(it.Key, n.fieldKey) {
			continue
		}
		switch n.kind {
		case storage.KindInteger:
			v, err := strconv.ParseInt(string(it.Value), 10, 64)
			return err == nil && v >= n.match.Min && v <= n.match.Max
		case storage.KindBoolean:
			v, err := strconv.ParseBool(string(it.Value))
			return err == nil && strconv.FormatBool(v) == string(n.match.Equals)
		default:
			return bytes.Equal(it.Value, n.match.Equals)
		}
	}
	return false
}

// matchesEntries evaluates the query on an event's indexed values (an index row), as matches
// does on the stored event: the row holds the same per-field last-write-wins values.
func (n *qnode) matchesEntries(entries []storage.IndexEntry) bool {
	switch {
	case n.and != nil:
		for _, c := range n.and {
			if !c.matchesEntries(entries) {
				return false
			}
		}
		return true
	case n.or != nil:
		for _, c := range n.or {
			if c.matchesEntries(entries) {
				return true
			}
		}
		return false
	}
	for i := range entries {
		e := &entries[i]
		if e.Field != n.field {
			continue
		}
		if n.kind == storage.KindInteger {
			return e.Kind == storage.KindInteger && e.Int >= n.match.Min && e.Int <= n.match.Max
		}
		return e.Kind != storage.KindInteger && bytes.Equal(e.Value, n.match.Equals)
	}
	return false
}

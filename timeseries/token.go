package timeseries

import (
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
)

// pageToken is the state a client carries between pages. It is opaque to clients (base64url
// of JSON) and bound to the query by a fingerprint, so a token cannot be replayed against a
// different query and silently skip or repeat events.
type pageToken struct {
	V int    `json:"v"`
	Q uint64 `json:"q"`
	T *int64 `json:"t,omitempty"` // time of the last event returned
	S string `json:"s,omitempty"` // its time series (search)
	I string `json:"i,omitempty"` // its event id
	N int    `json:"n,omitempty"` // events returned so far (totalRecordLimit)
	O int    `json:"o,omitempty"` // offset into distinct values (aggregation)
}

const tokenVersion = 1

// fingerprint hashes the parts of a request that define its result set.
func fingerprint(parts ...any) uint64 {
	h := fnv.New64a()
	b, _ := json.Marshal(parts)
	_, _ = h.Write(b)
	return h.Sum64()
}

func (t pageToken) encode() string {
	t.V = tokenVersion
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken returns the zero token for "", or an error naming pageToken.
func decodeToken(s string, fp uint64) (pageToken, *apiError) {
	var t pageToken
	if s == "" {
		return t, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.V != tokenVersion {
		return t, badField("pageToken", "is not a token this service issued")
	}
	if t.Q != fp {
		return t, badField("pageToken", "belongs to a different query; repeat the same request fields with it")
	}
	if t.N < 0 || t.O < 0 {
		return t, badField("pageToken", "is not a token this service issued")
	}
	return t, nil
}

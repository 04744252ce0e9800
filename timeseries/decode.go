package timeseries

import (
	"bytes"
	"encoding/json"
	"errors"
)

// strictUnmarshal rejects unknown fields (a typo such as "pagesize" should fail loudly rather
// than be ignored) and trailing data after the JSON value.
func strictUnmarshal(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

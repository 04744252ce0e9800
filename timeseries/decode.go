package timeseries

import (
	"errors"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Request bodies are decoded with the encoding/json v2 semantics (go-json-experiment/json)
// because they are the contract the API promises and v1 cannot give them: member names match
// exactly ("pagesize" or "Namespace" is an unknown field, not an alias), unknown and duplicate
// members are rejected (a duplicate "namespace" cannot tell a route's allowlist one namespace
// and the store another), and invalid UTF-8 is an error rather than being replaced with U+FFFD
// (two distinct event ids would otherwise collide after decoding). It is also markedly faster
// on the write path. Errors name the field by its JSON path.
var decodeOptions = json.JoinOptions(json.RejectUnknownMembers(true))

// strictUnmarshal decodes one JSON value into v; trailing data is an error.
func strictUnmarshal(body []byte, v any) error {
	return json.Unmarshal(body, v, decodeOptions)
}

// decode turns a decoding failure into a 400 naming the field (and the event, for writes).
func decode(body []byte, v any) *apiError {
	err := strictUnmarshal(body, v)
	if err == nil {
		return nil
	}
	var (
		ptr    jsontext.Pointer
		reason string
	)
	var se *json.SemanticError
	var sy *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		ptr = se.JSONPointer
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			reason = "is an unknown field (names are case-sensitive)"
		case se.GoType != nil:
			reason = "has the wrong JSON type (" + se.JSONKind.String() + ", want " + jsonKindOf(se.GoType.Kind().String()) + ")"
		default:
			reason = "is invalid: " + errMessage(se.Err, err)
		}
	case errors.As(err, &sy):
		ptr = sy.JSONPointer
		switch {
		case errors.Is(sy.Err, jsontext.ErrDuplicateName):
			reason = "appears twice in one object"
		case strings.Contains(sy.Error(), "UTF-8"):
			reason = "is not valid UTF-8"
		default:
			return badField("body", "invalid JSON: "+err.Error())
		}
	default:
		return badField("body", "invalid JSON: "+err.Error())
	}
	field, eventIndex := pathOf(ptr)
	if field == "" {
		return badField("body", reason)
	}
	e := badField(field, reason)
	e.eventIndex = eventIndex
	return e
}

func errMessage(inner, outer error) string {
	if inner != nil {
		return inner.Error()
	}
	return outer.Error()
}

func jsonKindOf(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64", "int32":
		return "integer"
	case "slice":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	}
	return goKind
}

// pathOf renders a JSON pointer as the field paths the API's errors use
// ("/events/3/eventId" -> "events[3].eventId"), with the event index for writes.
func pathOf(p jsontext.Pointer) (string, int) {
	if p == "" {
		return "", -1
	}
	var b strings.Builder
	eventIndex := -1
	parts := strings.Split(strings.TrimPrefix(string(p), "/"), "/")
	for i, tok := range parts {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if n, err := strconv.Atoi(tok); err == nil && i > 0 && tok == strconv.Itoa(n) {
			b.WriteString("[" + tok + "]")
			if i == 1 && parts[0] == "events" {
				eventIndex = n
			}
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String(), eventIndex
}

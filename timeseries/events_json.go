package timeseries

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// eventsPage is a read or search answer as the service builds it: the stored events
// themselves, encoded straight into EventsResponse's JSON. Reads and searches are CPU-bound,
// and going through EventRecord (a base64 string per item key and value, a formatted time
// string per event, then reflection) was a fifth of their CPU and most of their allocations.
// The bytes are the ones json.Marshal(EventsResponse) writes (events_json_test.go compares).
type eventsPage struct {
	events  []storage.Event
	next    string
	partial bool
}

// appendJSON is Serve's encoder for answers that have one (see jsonAppender).
func (p *eventsPage) appendJSON(b []byte) []byte {
	b = slices.Grow(b, p.sizeHint())
	b = append(b, `{"events":[`...)
	for i := range p.events {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendEventJSON(b, &p.events[i])
	}
	b = append(b, ']')
	if p.next != "" {
		b = append(b, `,"nextPageToken":`...)
		b = appendJSONString(b, p.next)
	}
	if p.partial {
		b = append(b, `,"partial":true`...)
	}
	return append(b, '}')
}

// sizeHint is about the encoded length (escapes aside), so the buffer grows once.
func (p *eventsPage) sizeHint() int {
	n := 64 + len(p.next)
	for i := range p.events {
		ev := &p.events[i]
		n += 80 + len(ev.TimeSeriesID) + len(ev.ID)
		for _, it := range ev.Items {
			n += 44 + base64.StdEncoding.EncodedLen(len(it.Key)) + base64.StdEncoding.EncodedLen(len(it.Value))
		}
	}
	return n
}

func appendEventJSON(b []byte, ev *storage.Event) []byte {
	b = append(b, `{"timeSeriesId":`...)
	b = appendJSONString(b, ev.TimeSeriesID)
	b = append(b, `,"eventTime":"`...)
	b = time.UnixMilli(ev.Time).UTC().AppendFormat(b, timeLayoutOut)
	b = append(b, `","eventId":`...)
	b = appendJSONString(b, ev.ID)
	b = append(b, `,"eventItems":[`...)
	for i, it := range ev.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"eventItemKey":"`...)
		b = base64.StdEncoding.AppendEncode(b, it.Key)
		b = append(b, `","eventItemValue":"`...)
		b = base64.StdEncoding.AppendEncode(b, it.Value)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// jsonAppender is an answer that encodes itself faster than reflection does.
type jsonAppender interface{ appendJSON([]byte) []byte }

// marshalAnswer encodes an operation's answer.
func marshalAnswer(out any) ([]byte, error) {
	if a, ok := out.(jsonAppender); ok {
		return a.appendJSON(nil), nil
	}
	return json.Marshal(out)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s the way encoding/json does by default: HTML-sensitive <, > and &
// escaped, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package timeseries

import "strings"

// decodeWriteFast decodes the common shape of a write body without reflection: plain ASCII
// strings without escapes, every member known and given once, nothing after the value. On
// anything else it reports false and the caller decodes with the strict decoder, which gives
// the same result for every body this accepts (FuzzWriteDecodeFastMatchesStrict) and the
// field-naming error for every body it rejects. JSON decoding was the largest share of ingest
// CPU outside the storage engine.
//
// The item and time strings point into one copy of the body (they are consumed while the
// writes are built); series and event ids, which stay queued with the event, are copied
// out so a queued event does not keep its whole request alive.
func decodeWriteFast(body []byte, req *WriteRequest) bool {
	d := fastDecoder{s: string(body)}
	// Capacity hints from the body's size (a miss only costs an append's growth): an event
	// of the usual shape takes 200-300 bytes, an item 60-100. Counting member names instead
	// cost two more passes over the body, more than the growth they save.
	d.eventsHint = len(d.s)/200 + 1
	d.pool = make([]EventItem, 0, len(d.s)/80+1)
	if !d.writeRequest(req) {
		*req = WriteRequest{}
		return false
	}
	d.space()
	if d.i != len(d.s) {
		*req = WriteRequest{}
		return false
	}
	return true
}

type fastDecoder struct {
	s          string
	i          int
	eventsHint int         // expected events, to size WriteRequest.Events
	pool       []EventItem // backs every event's EventItems
}

func (d *fastDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips whitespace and the byte c.
func (d *fastDecoder) consume(c byte) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (d *fastDecoder) str() (string, bool) {
	if !d.consume('"') {
		return "", false
	}
	start := d.i
	for d.i < len(d.s) {
		c := d.s[d.i]
		if c == '"' {
			d.i++
			return d.s[start : d.i-1], true
		}
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return "", false
		}
		d.i++
	}
	return "", false
}

// The object readers below share one shape: '{', then members "name": value separated by
// ',', then '}'. Unknown or repeated names, and null where an array is expected, are left to
// the strict decoder (its error, or its exact treatment).

func (d *fastDecoder) writeRequest(req *WriteRequest) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	var seenNS, seenEvents bool
	for {
		name, ok := d.str()
		if !ok || !d.consume(':') {
			return false
		}
		switch {
		case name == "namespace" && !seenNS:
			seenNS = true
			if req.Namespace, ok = d.str(); !ok {
				return false
			}
		case name == "events" && !seenEvents:
			seenEvents = true
			if !d.events(req) {
				return false
			}
		default:
			return false
		}
		if !d.consume(',') {
			return d.consume('}')
		}
	}
}

func (d *fastDecoder) events(req *WriteRequest) bool {
	if !d.consume('[') {
		return false
	}
	req.Events = make([]EventRecord, 0, d.eventsHint)
	if d.consume(']') {
		return true
	}
	for {
		req.Events = append(req.Events, EventRecord{})
		if !d.event(&req.Events[len(req.Events)-1]) {
			return false
		}
		if !d.consume(',') {
			return d.consume(']')
		}
	}
}

func (d *fastDecoder) event(ev *EventRecord) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	var seen [4]bool
	for {
		name, ok := d.str()
		if !ok || !d.consume(':') {
			return false
		}
		switch {
		case name == "timeSeriesId" && !seen[0]:
			seen[0] = true
			ev.TimeSeriesID, ok = d.str()
			ev.TimeSeriesID = strings.Clone(ev.TimeSeriesID) // stays queued with the event
		case name == "eventTime" && !seen[1]:
			seen[1] = true
			ev.EventTime, ok = d.str()
		case name == "eventId" && !seen[2]:
			seen[2] = true
			ev.EventID, ok = d.str()
			ev.EventID = strings.Clone(ev.EventID) // stays queued with the event
		case name == "eventItems" && !seen[3]:
			seen[3] = true
			ok = d.items(ev)
		default:
			return false
		}
		if !ok {
			return false
		}
		if !d.consume(',') {
			return d.consume('}')
		}
	}
}

// items reads an event's items into the decoder's shared item array (one allocation per
// few events instead of a growing slice per event).
func (d *fastDecoder) items(ev *EventRecord) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		ev.EventItems = []EventItem{}
		return true
	}
	start := len(d.pool)
	for {
		d.pool = append(d.pool, EventItem{})
		if !d.item(&d.pool[len(d.pool)-1]) {
			return false
		}
		if !d.consume(',') {
			if !d.consume(']') {
				return false
			}
			ev.EventItems = d.pool[start:len(d.pool):len(d.pool)]
			return true
		}
	}
}

func (d *fastDecoder) item(it *EventItem) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	var seenKey, seenValue bool
	for {
		name, ok := d.str()
		if !ok || !d.consume(':') {
			return false
		}
		switch {
		case name == "eventItemKey" && !seenKey:
			seenKey = true
			it.EventItemKey, ok = d.str()
		case name == "eventItemValue" && !seenValue:
			seenValue = true
			it.EventItemValue, ok = d.str()
		default:
			return false
		}
		if !ok {
			return false
		}
		if !d.consume(',') {
			return d.consume('}')
		}
	}
}

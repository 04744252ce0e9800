package filters

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// String renders one passport event compactly, e.g.
// "0.041ms shed_global continued 3µs" for a chain step, or
// "0.052ms shed_global: admitted score=50 cutoff=100" for a note.
func (e Event) String() string {
	var b strings.Builder
	e.appendTo(&b)
	return b.String()
}

func (e Event) appendTo(b *strings.Builder) {
	b.WriteString(strconv.FormatFloat(float64(e.At)/float64(time.Millisecond), 'f', 3, 64))
	b.WriteString("ms ")
	if e.Filter != "" {
		b.WriteString(e.Filter)
		b.WriteByte(' ')
	}
	writeClean(b, e.What)
	if e.Instance != "" {
		b.WriteByte(' ')
		b.WriteString(e.Instance)
		b.WriteByte(' ')
		b.WriteString(e.Outcome)
	}
	for _, v := range e.Values {
		if v.Name == "" {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(v.Name)
		b.WriteByte('=')
		b.WriteString(strconv.FormatFloat(v.V, 'f', -1, 64))
	}
	if e.Filter != "" || e.Instance != "" {
		b.WriteByte(' ')
		b.WriteString(e.Took.Round(time.Microsecond).String())
	}
}

// writeClean writes s with control bytes and the separator ';' replaced,
// so a note carrying an error message cannot break a header or a log
// line.
func writeClean(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			b.WriteByte(' ')
		case c == ';':
			b.WriteByte(',')
		default:
			b.WriteByte(c)
		}
	}
}

// FormatPassport renders events on one line, separated by "; ": the
// compact form of the response header and of quick looks in a terminal.
// The result is plain printable text whatever the notes contain, so it is
// a valid header value.
func FormatPassport(events []Event) string {
	var b strings.Builder
	for i, e := range inTimeOrder(events) {
		if i > 0 {
			b.WriteString("; ")
		}
		e.appendTo(&b)
	}
	return b.String()
}

// PassportLines renders each event on its own, for JSON documents and the
// access log.
func PassportLines(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range inTimeOrder(events) {
		out[i] = e.String()
	}
	return out
}

// inTimeOrder returns the events by the time they start: a chain step is
// recorded when it ends, after the notes it made, but reads best before
// them.
func inTimeOrder(events []Event) []Event {
	out := slices.Clone(events)
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	return out
}

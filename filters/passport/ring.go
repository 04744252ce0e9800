package passport

import (
	"strings"
	"sync"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

// Entry is one stored passport: the request it tells the story of and its
// events, complete (recorded once the response body was sent).
type Entry struct {
	RequestID string    `json:"request_id"`
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	Host      string    `json:"host"`
	Path      string    `json:"path"`
	Route     string    `json:"route,omitempty"`
	Status    int       `json:"status"`
	Category  string    `json:"category"`
	Duration  string    `json:"duration"`
	// Truncated: the passport reached its bound and later events were
	// not recorded.
	Truncated bool     `json:"truncated,omitempty"`
	Events    []string `json:"events"`
}

// Ring keeps the last passports asked for, oldest evicted first. It
// outlives config snapshots (a reload keeps what it holds) and is safe for
// concurrent use; lookups are by request id.
type Ring struct {
	mu       sync.Mutex
	entries  []Entry // circular once full: len == capacity
	capacity int
	next     int // the oldest entry, overwritten next, once full
	byID     map[string]int
	added    uint64
}

// NewRing returns an empty ring.
func NewRing() *Ring { return &Ring{byID: map[string]int{}} }

// Add stores e, keeping at most capacity entries: the oldest are evicted.
// capacity comes from the snapshot's options, so a reload that resizes the
// ring applies with the next passport stored (the newest entries stay).
func (r *Ring) Add(e Entry, capacity int) {
	capacity = max(capacity, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.added++
	if capacity != r.capacity {
		r.resize(capacity)
	}
	if len(r.entries) < capacity {
		r.entries = append(r.entries, e)
		r.reindex(len(r.entries)-1, "")
		return
	}
	old := r.entries[r.next].RequestID
	r.entries[r.next] = e
	r.reindex(r.next, old)
	r.next = (r.next + 1) % capacity
}

// reindex points e's id at slot i, forgetting the evicted id old unless a
// newer entry took it over.
func (r *Ring) reindex(i int, old string) {
	if old != "" {
		if j, ok := r.byID[old]; ok && j == i {
			delete(r.byID, old)
		}
	}
	r.byID[r.entries[i].RequestID] = i
}

// resize keeps the newest min(len, capacity) entries, oldest first.
func (r *Ring) resize(capacity int) {
	ordered := make([]Entry, 0, len(r.entries))
	ordered = append(ordered, r.entries[r.next:]...)
	ordered = append(ordered, r.entries[:r.next]...)
	if len(ordered) > capacity {
		ordered = ordered[len(ordered)-capacity:]
	}
	r.entries = append(make([]Entry, 0, capacity), ordered...)
	r.capacity = capacity
	r.next = 0
	clear(r.byID)
	for i := range r.entries {
		r.byID[r.entries[i].RequestID] = i
	}
}

// Get returns the passport of the request with id.
func (r *Ring) Get(id string) (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.byID[id]
	if !ok {
		return Entry{}, false
	}
	return r.entries[i], true
}

// Stats reports how many passports the ring holds and has stored in all.
func (r *Ring) Stats() (held int, added uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries), r.added
}

// entryOf copies what a passport needs out of c; it runs in a completion
// hook, when c.Request is gone.
func entryOf(c *filters.Context) Entry {
	p := c.Passport()
	e := Entry{
		// The id and the path may be views of the Context's buffers, reused
		// once the Context is released; the ring keeps its own copies.
		RequestID: strings.Clone(c.RequestID), Time: c.Start, Method: c.Method, Host: c.Host, Path: strings.Clone(c.Path),
		Status: c.Status, Category: string(c.Category), Duration: c.End.Sub(c.Start).String(),
		Truncated: len(p) >= filters.MaxPassportEvents, Events: filters.PassportLines(p),
	}
	if c.Route != nil {
		e.Route = c.Route.Name
	}
	return e
}

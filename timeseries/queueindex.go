package timeseries

import (
	"hash/maphash"
)

// pendingIndex finds a queued event by its idempotency key, so a re-write merges into it.
// Every async event is looked up, added and removed once, and a deep queue holds a hundred
// thousand of them, so the map is keyed by a 64-bit hash of the key (small entries, one
// cheap hash) instead of the three-field key itself; the slot's event confirms a hit, and
// the rare key whose hash is taken by another lives in an overflow map.
type pendingIndex struct {
	seed     maphash.Seed
	byHash   map[uint64]queueSlot
	overflow map[eventKey]queueSlot
}

func newPendingIndex() pendingIndex {
	return pendingIndex{seed: maphash.MakeSeed(), byHash: make(map[uint64]queueSlot)}
}

func (x *pendingIndex) hash(k eventKey) uint64 {
	h := maphash.String(x.seed, k.tsid)
	h = h*0x9E3779B97F4A7C15 ^ maphash.String(x.seed, k.id)
	return h*0x9E3779B97F4A7C15 ^ uint64(k.time)
}

// key is the idempotency key of the event in a slot.
func (s queueSlot) key() eventKey {
	e := &s.chunk.writes[s.pos].Event
	return eventKey{e.TimeSeriesID, e.Time, e.ID}
}

func (x *pendingIndex) get(k eventKey) (queueSlot, bool) {
	if s, ok := x.byHash[x.hash(k)]; ok && s.key() == k {
		return s, true
	}
	s, ok := x.overflow[k]
	return s, ok
}

// put records a key that is not in the index yet.
func (x *pendingIndex) put(k eventKey, s queueSlot) {
	h := x.hash(k)
	if _, taken := x.byHash[h]; !taken {
		x.byHash[h] = s
		return
	}
	if x.overflow == nil {
		x.overflow = make(map[eventKey]queueSlot)
	}
	x.overflow[k] = s
}

// remove forgets a key that is in the index.
func (x *pendingIndex) remove(k eventKey) {
	h := x.hash(k)
	if s, ok := x.byHash[h]; ok && s.key() == k {
		delete(x.byHash, h)
		return
	}
	delete(x.overflow, k)
}

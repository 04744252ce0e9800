package timeseries

import (
	"testing"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// TestPendingIndexHashCollision: two keys whose hashes collide are both found, and removing
// one leaves the other.
func TestPendingIndexHashCollision(t *testing.T) {
	c := &queueChunk{writes: []storage.Write{
		{Event: storage.Event{TimeSeriesID: "a", Time: 1, ID: "x"}},
		{Event: storage.Event{TimeSeriesID: "b", Time: 2, ID: "y"}},
	}}
	a, b := queueSlot{c, 0}, queueSlot{c, 1}
	x := newPendingIndex()
	// a sits under b's hash, as if the two hashes were equal.
	x.byHash[x.hash(b.key())] = a
	x.put(b.key(), b)
	if got, ok := x.get(b.key()); !ok || got != b {
		t.Fatalf("colliding key: got %+v %v, want slot 1", got, ok)
	}
	if len(x.overflow) != 1 {
		t.Fatalf("overflow holds %d keys, want the colliding one", len(x.overflow))
	}
	x.remove(b.key())
	if _, ok := x.get(b.key()); ok {
		t.Fatal("removed key still found")
	}
	if got := x.byHash[x.hash(b.key())]; got != a {
		t.Fatalf("removing the colliding key dropped the other: %+v", got)
	}
	// The plain path: put, get, remove.
	c.writes = append(c.writes, storage.Write{Event: storage.Event{TimeSeriesID: "c", Time: 3, ID: "z"}})
	z := queueSlot{c, 2}
	x.put(z.key(), z)
	if got, ok := x.get(z.key()); !ok || got != z {
		t.Fatalf("got %+v %v, want slot 2", got, ok)
	}
	if _, ok := x.get(eventKey{"c", 3, "other"}); ok {
		t.Fatal("a key never put was found")
	}
	x.remove(z.key())
	if _, ok := x.get(z.key()); ok {
		t.Fatal("removed key still found")
	}
}

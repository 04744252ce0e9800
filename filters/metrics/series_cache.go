package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// countedSeries is a counter and a histogram updated together (a request,
// an attempt), found by one lookup.
type countedSeries struct {
	count   prometheus.Counter
	observe prometheus.Observer
}

// seriesCache keeps the children of metric vectors the hot path updates on
// every request, by their label values. A vector's WithLabelValues checks
// every label is valid UTF-8, hashes them byte by byte and takes a lock on
// each call; a label set seen before costs here one lock-free map lookup.
// The label sets come from the config (routes, origins, instances) and
// small fixed sets (status classes, categories, outcomes), so the map stays
// bounded; forget drops the sets of an instance that left.
type seriesCache[K comparable, S any] struct {
	mu   sync.Mutex // serializes additions and forget
	seen atomic.Pointer[map[K]S]
}

// get returns k's series, made with create (under the lock, only the first
// time k is seen).
func (c *seriesCache[K, S]) get(k K, create func(K) S) S {
	if m := c.seen.Load(); m != nil {
		if s, ok := (*m)[k]; ok {
			return s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.seen.Load()
	if old != nil {
		if s, ok := (*old)[k]; ok {
			return s
		}
	}
	s := create(k)
	c.replace(old, func(next map[K]S) { next[k] = s })
	return s
}

// forget runs drop (which deletes the series from their vectors) and
// removes the label sets it matches, under the lock, so that no get can
// keep a child the vector no longer exports.
func (c *seriesCache[K, S]) forget(match func(K) bool, drop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	drop()
	old := c.seen.Load()
	c.replace(old, func(next map[K]S) {
		for k := range next {
			if match(k) {
				delete(next, k)
			}
		}
	})
}

// replace publishes a copy of old changed by edit; callers hold mu.
func (c *seriesCache[K, S]) replace(old *map[K]S, edit func(map[K]S)) {
	next := make(map[K]S, 1)
	if old != nil {
		next = make(map[K]S, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
	}
	edit(next)
	c.seen.Store(&next)
}

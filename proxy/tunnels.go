package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

// TunnelObserver receives every WebSocket tunnel's life (metrics;
// *metrics.Metrics is one). It is optional (TunnelObserverKey).
type TunnelObserver interface {
	// TunnelOpened counts a tunnel whose 101 is going to the client.
	TunnelOpened(route string)
	// TunnelClosed counts its end, with how long it was open.
	TunnelClosed(route string, d time.Duration)
	// TunnelBytes counts n bytes relayed towards the origin (toOrigin) or
	// the client.
	TunnelBytes(route string, toOrigin bool, n int)
}

// tunnelMetrics are one route's tunnel counters.
type tunnelMetrics interface {
	Opened()
	Closed(d time.Duration)
	Bytes(toOrigin bool, n int)
}

// routeTunnelMetrics reports one route's tunnels to an observer.
type routeTunnelMetrics struct {
	o     TunnelObserver
	route string
}

func (m routeTunnelMetrics) Opened()                    { m.o.TunnelOpened(m.route) }
func (m routeTunnelMetrics) Closed(d time.Duration)     { m.o.TunnelClosed(m.route, d) }
func (m routeTunnelMetrics) Bytes(toOrigin bool, n int) { m.o.TunnelBytes(m.route, toOrigin, n) }

// TunnelObserverKey is the service tunnels report to; optional.
var TunnelObserverKey = filters.NewServiceKey[TunnelObserver]("proxy.tunnels")

// tunnelsKey is the builder's set of tunnels, so endpoints register theirs
// where the server can drain them.
var tunnelsKey = filters.NewServiceKey[*tunnelSet]("proxy.tunnelset")

type noTunnelMetrics struct{}

func (noTunnelMetrics) Opened()              {}
func (noTunnelMetrics) Closed(time.Duration) {}
func (noTunnelMetrics) Bytes(bool, int)      {}

// tunnelSet is every tunnel of a server, from the origin's 101 until both
// connections are closed, so shutdown can wait for them and then close
// those still open. Tunnels live outside fasthttp's connection accounting
// (a hijacked connection leaves it), hence their own.
type tunnelSet struct {
	mu   sync.Mutex
	live map[*tunnel]struct{}
	// ended is closed and replaced whenever a tunnel leaves, so wait
	// needs no polling.
	ended chan struct{}
	// closed is set by closeAll: a tunnel that starts after it is closed
	// at once.
	closed bool
	// running counts tunnels relaying bytes (their client connection is
	// hijacked); pending ones still wait for fasthttp's hijack.
	running atomic.Int64
}

func newTunnelSet() *tunnelSet {
	return &tunnelSet{live: map[*tunnel]struct{}{}, ended: make(chan struct{})}
}

// add registers t; false when the set was closed (shutdown is past its
// drain) and t must not open.
func (s *tunnelSet) add(t *tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.live[t] = struct{}{}
	return true
}

func (s *tunnelSet) remove(t *tunnel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[t]; !ok {
		return
	}
	delete(s.live, t)
	close(s.ended)
	s.ended = make(chan struct{})
}

// Len is the number of tunnels registered (pending or running).
func (s *tunnelSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// Running is the number of tunnels relaying bytes.
func (s *tunnelSet) Running() int64 { return s.running.Load() }

// wait returns once no tunnel is left, or ctx's error when it ends first.
func (s *tunnelSet) wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, ended := len(s.live), s.ended
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ended:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// closeAll closes every tunnel (both connections) and refuses new ones;
// it returns how many were open.
func (s *tunnelSet) closeAll(reason string) int {
	s.mu.Lock()
	s.closed = true
	list := make([]*tunnel, 0, len(s.live))
	for t := range s.live {
		list = append(list, t)
	}
	s.mu.Unlock()
	for _, t := range list {
		t.abort(reason)
	}
	return len(list)
}

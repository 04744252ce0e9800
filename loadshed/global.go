package loadshed

import (
	"sync/atomic"
	"time"
)

// Global is the gateway-wide throttler. Its signals are in-flight requests
// (Begin/End), open client connections (a gauge or ConnOpened/ConnClosed)
// and CPU utilisation (sampled by the Shedder's ticker).
type Global struct {
	scope
	cfg       atomic.Pointer[GlobalConfig]
	inflight  atomic.Int64
	conns     atomic.Int64
	connGauge atomic.Pointer[func() int64]
	cpu       cpuSampler // ticker-only
}

// Begin counts an admitted request as in flight; pair it with End.
func (g *Global) Begin() { g.inflight.Add(1) }

// End counts a request as finished.
func (g *Global) End() { g.inflight.Add(-1) }

// ConnOpened and ConnClosed count client connections when no gauge is set
// (e.g. from the server's connection-state hook).
func (g *Global) ConnOpened() { g.conns.Add(1) }

// ConnClosed is the counterpart of ConnOpened.
func (g *Global) ConnClosed() { g.conns.Add(-1) }

// SetConnectionsGauge makes the connections signal read fn on every tick
// instead of the ConnOpened/ConnClosed counter (e.g. the server's own open
// connection count). fn must be safe for concurrent use; nil reverts to the
// counter.
func (g *Global) SetConnectionsGauge(fn func() int64) {
	if fn == nil {
		g.connGauge.Store(nil)
		return
	}
	g.connGauge.Store(&fn)
}

// Inflight returns the current in-flight count.
func (g *Global) Inflight() int64 { return g.inflight.Load() }

// Decide checks score against the global cutoff. It does not apply chaos;
// use Shedder.DecideGlobal for that. Lock-free and allocation-free.
func (g *Global) Decide(score int) Decision { return g.decide(score) }

func (g *Global) connections() int64 {
	if fn := g.connGauge.Load(); fn != nil {
		return (*fn)()
	}
	return g.conns.Load()
}

func (g *Global) specs(c *GlobalConfig) [maxSignals]signalSpec {
	s := c.Signals
	return [maxSignals]signalSpec{
		{name: "inflight", enabled: s.Inflight.Enabled, threshold: s.Inflight.Threshold, max: s.Inflight.Max},
		{name: "connections", enabled: s.Connections.Enabled, threshold: s.Connections.Threshold, max: s.Connections.Max},
		{name: "cpu", enabled: s.CPU.Enabled, threshold: s.CPU.Threshold, max: s.CPU.Max},
	}
}

func (g *Global) tick(now time.Time, dt time.Duration) {
	c := g.cfg.Load()
	g.cpu.sample(now, &c.Signals.CPU)
	raw := [maxSignals]float64{float64(g.inflight.Load()), float64(g.connections()), g.cpu.util}
	g.step(raw, g.specs(c), &c.ScopeConfig, dt)
}

func (g *Global) apply(c *GlobalConfig) {
	g.cfg.Store(c)
	g.republish(g.specs(c), &c.ScopeConfig)
}

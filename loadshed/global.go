package loadshed

import (
	"sync/atomic"
	"time"
)

// Global is the gateway-wide throttler. Its signals are in-flight requests
// (Begin/End), open client connections (a gauge or ConnOpened/ConnClosed)
// CPU utilisation and goroutine scheduling latency (sampled by the Shedder's ticker).
type Global struct {
	scope
	cfg       atomic.Pointer[GlobalConfig]
	inflight  atomic.Int64
	conns     atomic.Int64
	connGauge atomic.Pointer[func() int64]
	cpu       cpuSampler          // ticker-only
	sched     schedLatencySampler // ticker-only
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

// monitors names the global scope's signals. Open connections do not fall
// when requests are shed (a shed client keeps its connection), so they map
// proportionally; in-flight requests and CPU are held at their thresholds.
func (g *Global) monitors(c *GlobalConfig) []monitor {
	s := c.Signals
	return []monitor{
		{name: "inflight", spec: spec(s.Inflight), response: Hold,
			sample: func(time.Time) float64 { return float64(g.inflight.Load()) }},
		{name: "connections", spec: spec(s.Connections), response: Proportional,
			sample: func(time.Time) float64 { return float64(g.connections()) }},
		{name: "cpu", spec: signalSpec{enabled: s.CPU.Enabled, threshold: s.CPU.Threshold, max: s.CPU.Max}, response: Hold,
			sample: func(now time.Time) float64 { g.cpu.sample(now, &c.Signals.CPU); return g.cpu.util }},
		// Proportional and capped at min_cutoff, not held: when the CPU is
		// taken by neighbours, shedding cannot shorten the waits, and a held
		// signal would walk the cutoff down to critical traffic.
		{name: "sched_latency", spec: schedLatencySpec(s.SchedLatency, c.K), response: Proportional,
			sample: func(now time.Time) float64 { g.sched.sample(now, &c.Signals.SchedLatency); return g.sched.value }},
	}
}

func schedLatencySpec(c SchedLatencySignalConfig, k float64) signalSpec {
	return signalSpec{enabled: c.Enabled, threshold: c.Threshold.Seconds(), max: c.Max.Seconds(),
		ceiling: levelForCutoff(c.MinCutoff, k)}
}

func spec(c SignalConfig) signalSpec {
	return signalSpec{enabled: c.Enabled, threshold: c.Threshold, max: c.Max}
}

func (g *Global) tick(now time.Time, dt time.Duration) {
	c := g.cfg.Load()
	g.step(g.monitors(c), &c.ScopeConfig, now, dt)
}

func (g *Global) apply(c *GlobalConfig) {
	g.cfg.Store(c)
	g.republish(g.monitors(c), &c.ScopeConfig)
}

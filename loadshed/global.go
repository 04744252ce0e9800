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
	// admitted counts requests admitted by Begin, so the starvation
	// controller knows what share of the gateway's requests it refuses.
	admitted atomic.Uint64
	starve   starvationController // under the scope's lock
	// decided counts the requests DecideGlobal judged, per score: the demand
	// the starvation controller's onset sizes its cut from.
	decided scoreCounters
	// onsetSeq, onsetDecided and onsetRefused are the cpu sample and the
	// counts at the end of the last period (ticker-only).
	onsetSeq     uint64
	onsetDecided [topScore + 1]uint64
	onsetRefused uint64
	// starvedWait is the gateway's mean scheduling wait (ns) while its
	// quantile is above sched_latency's threshold and its run queue shows
	// its own backlog (starvationBacklog), else 0. Every attempt's
	// time to headers includes about that much, so origin scopes read it
	// (see Origin.monitors).
	starvedWait atomic.Int64
	runq        RunQueueSource // ticker-only
	// selfStarved: the starvation controller sheds and the gateway's own work is the
	// cause (refusal.go); held counts refusals being held.
	selfStarved atomic.Bool
	held        atomic.Int64
}

// Begin counts an admitted request as in flight; pair it with End.
func (g *Global) Begin() {
	g.inflight.Add(1)
	g.admitted.Add(1)
}

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
func (g *Global) Decide(score int) Decision {
	g.decided.inc(score)
	return g.decide(score)
}

func (g *Global) connections() int64 {
	if fn := g.connGauge.Load(); fn != nil {
		return (*fn)()
	}
	return g.conns.Load()
}

// monitors names the global scope's signals. Open connections do not fall
// when requests are shed (a shed client keeps its connection), so they map
// proportionally; in-flight requests are held at their threshold; CPU and
// scheduling latency drive the starvation controller.
func (g *Global) monitors(c *GlobalConfig) []monitor {
	s := c.Signals
	return []monitor{
		{name: "inflight", spec: spec(s.Inflight), response: Hold,
			sample: func(time.Time) float64 { return float64(g.inflight.Load()) }},
		{name: "connections", spec: spec(s.Connections), response: Proportional,
			sample: func(time.Time) float64 { return float64(g.connections()) }},
		// Not held: when the CPU is taken by neighbours, shedding cannot
		// shorten the waits, and a held signal would walk the cutoff down to
		// critical traffic. The starvation controller raises shedding only
		// while it helps, and never below min_cutoff.
		{name: "cpu", spec: signalSpec{enabled: s.CPU.Enabled, threshold: s.CPU.Threshold, max: s.CPU.Max}, response: Starvation,
			sample: func(now time.Time) float64 { g.cpu.sample(now, &c.Signals.CPU); return g.cpu.util }},
		{name: "sched_latency", spec: schedLatencySpec(s.SchedLatency), response: Starvation,
			sample: func(now time.Time) float64 { g.sched.sample(now, &c.Signals.SchedLatency); return g.sched.value }},
	}
}

func schedLatencySpec(c SchedLatencySignalConfig) signalSpec {
	return signalSpec{enabled: c.Enabled, threshold: c.Threshold.Seconds(), max: c.Max.Seconds()}
}

// starvedLevel is the scope's starvation hook: the level for the cutoff the
// starvation controller sets (dt 0: the current one, without stepping).
func (g *Global) starvedLevel(pressure, ratio float64, dt time.Duration) float64 {
	c := g.cfg.Load()
	sig := c.Signals
	if !sig.CPU.Enabled && !sig.SchedLatency.Enabled {
		g.starve.reset()
		g.starvedWait.Store(0)
		g.selfStarved.Store(false)
		return 0
	}
	// Only the gateway's own backlog counts: a gateway starved by its
	// neighbours leaves its origin scopes as they are (the global scope does
	// not shed for those waits, so the origins must keep protecting themselves).
	if w := g.sched.value; sig.SchedLatency.Enabled && w > sig.SchedLatency.Threshold.Seconds() && g.starve.runQueue >= starvationBacklog {
		g.starvedWait.Store(max(1, int64(g.sched.mean*float64(time.Second))))
	} else {
		g.starvedWait.Store(0)
	}
	if dt > 0 {
		shed, would := g.shed.load(), g.would.load()
		refused := shed.Total() + would.Total()
		in := starvationInput{
			pressure: pressure, ratio: ratio, refused: refused, decided: refused + g.admitted.Load(),
			runQueue: g.runq(),
			floor:    c.StarvationFloor(),
			busy:     sig.CPU.Enabled && g.cpu.util >= sig.CPU.Threshold,
		}
		g.onsetEvidence(&in.onset, shed.Total()+g.owner.chaos.load().Total(), sig.CPU)
		g.starve.step(in, dt)
		g.selfStarved.Store(g.starve.cutoff < 100 && (in.busy || g.starve.runQueue >= starvationBacklog))
	}
	if !g.starve.primed {
		return 0
	}
	return levelForCutoff(max(g.starve.cutoff, c.StarvationFloor()), c.K)
}

// onsetEvidence fills ev when the cpu signal has ended a period since the last call: the
// period's utilisation and the requests decided and refused (shed, not dry-run) in it.
func (g *Global) onsetEvidence(ev *onsetEvidence, shed uint64, cpu CPUSignalConfig) {
	if !cpu.Enabled || g.cpu.seq == g.onsetSeq {
		return
	}
	fresh := g.onsetSeq != 0
	g.onsetSeq = g.cpu.seq
	for i := range g.decided {
		n := g.decided[i].Load()
		ev.decided[i] = float64(n - g.onsetDecided[i])
		g.onsetDecided[i] = n
	}
	ev.refused = float64(shed - g.onsetRefused)
	g.onsetRefused = shed
	ev.fresh, ev.util, ev.target = fresh, g.cpu.util, cpu.Threshold
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

// starvationSnapshot reports the starvation controller for admin (nil while it is off).
// Called under the Shedder's lock, which serialises it with the ticker.
func (g *Global) starvationSnapshot() *StarvationSnapshot {
	cfg := g.cfg.Load()
	sig := cfg.Signals
	if !sig.CPU.Enabled && !sig.SchedLatency.Enabled {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := &g.starve
	state := "clear"
	switch {
	case c.inOnset:
		state = "onset"
	case c.blocked:
		state = "blocked"
	case c.raising:
		state = "raising"
	}
	return &StarvationSnapshot{Cutoff: c.cutoff, State: state, WaitRatio: c.ratio, RunQueue: c.runQueue,
		RefusedShare: c.share(), Floor: cfg.StarvationFloor(), Onsets: c.onsets,
		SelfStarved: g.selfStarved.Load(), HeldRefusals: g.held.Load()}
}

// StarvationSnapshot is the starvation controller's state.
type StarvationSnapshot struct {
	// Cutoff is the cutoff it asks for (the scope publishes the lowest of
	// this and what its other signals ask for).
	Cutoff float64 `json:"cutoff"`
	// State is "clear" (signals below threshold, backing off), "onset"
	// (sizing the cut from evidence at the start of an overload of the
	// gateway's own CPU), "raising" or "blocked" (shedding did not shorten
	// the waits).
	State string `json:"state"`
	// WaitRatio is the worst signal over its threshold, smoothed.
	WaitRatio float64 `json:"wait_ratio"`
	// RunQueue is runnable goroutines per core, smoothed.
	RunQueue float64 `json:"run_queue_per_core"`
	// RefusedShare is the share of requests the global scope refuses.
	RefusedShare float64 `json:"refused_share"`
	Floor        float64 `json:"floor"`
	// Onsets counts the overloads whose cut was sized from evidence.
	Onsets uint64 `json:"onsets"`
	// SelfStarved: it sheds because of the gateway's own work, so global.starved_refusals
	// applies; HeldRefusals is how many refusals are being held now.
	SelfStarved  bool  `json:"self_starved"`
	HeldRefusals int64 `json:"held_refusals"`
}

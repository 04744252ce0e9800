package loadshed

import "time"

// How a refusal is answered while the gateway's own work starves its CPU.
//
// Refusing is not free: the request is still read, parsed, scored and answered, about half
// the CPU of proxying it (TestShedExperimentRejectionCost), and the read and write system
// calls are most of it. A client refused at once sends its next request at once, so past
// a point the gateway spends its core refusing, and critical requests queue for the core
// behind the refusals whatever the cutoff. global.starved_refusals lets the refusal itself
// push back on the client while (and only while) that is the case: its answer is held for
// a bounded time, so a client with a bounded number of connections sends fewer requests
// per second to be refused, and/or the connection is closed after it.

// StarvedRefusal is how to answer a request the global scope refused now: hold the answer
// for delay (only if ok; release the hold with ReleaseHeld once answered) and close the
// connection after it if closeConn. Both are zero unless the starvation controller is
// shedding because of the gateway's own work (its CPU at the cpu threshold or its run
// queue at starvationBacklog). At most starved_refusals.max_delayed answers are held at
// once; beyond that they are answered at once.
func (g *Global) StarvedRefusal() (delay time.Duration, ok, closeConn bool) {
	if !g.selfStarved.Load() {
		return 0, false, false
	}
	r := g.cfg.Load().StarvedRefusals
	if r.Delay <= 0 {
		return 0, false, r.Close
	}
	if g.held.Add(1) > int64(r.MaxDelayed) {
		g.held.Add(-1)
		return 0, false, r.Close
	}
	return r.Delay, true, r.Close
}

// ReleaseHeld ends a hold StarvedRefusal granted.
func (g *Global) ReleaseHeld() { g.held.Add(-1) }

// Held is the number of refusals being held now.
func (g *Global) Held() int64 { return g.held.Load() }

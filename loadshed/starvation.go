package loadshed

import (
	"math"
	"time"
)

// The starvation controller drives the global scope's cutoff from the signals that say the
// gateway is short of CPU: sched_latency (how long runnable goroutines wait for a core) and
// cpu (utilisation). It works in cutoff points, not in levels, because what an SRE wants
// from it is stated in points: walk band by band, never jump.
//
// Why a controller of its own. Mapped in proportion, a wait swings the cutoff with every
// 250 ms sample (measured: moves of 34-41 points between seconds). Held like in-flight
// requests, it walks the cutoff down into critical traffic whenever the waits come from
// something shedding cannot fix (neighbours on the machine, a cgroup quota), since nothing
// the gateway refuses shortens them. So it raises shedding only while shedding is seen to
// help, the rule the origin's adaptive limit follows ("shrinking must help"):
//
//   - Raise: while the worst signal is above its threshold, the cutoff falls by up to
//     starvationRaisePerSecond points a second (in proportion to the pressure, at least a
//     fifth of it), never below the floor (global.min_cutoff).
//   - Judge: the controller remembers the smoothed wait and the share of requests it refused
//     when it started raising. Once it refuses starvationJudgeShare more of the gateway's
//     requests than then, shedding must have helped: the wait fell by starvationHelpDrop, or
//     the gateway's own CPU use is at the cpu signal's threshold (its own work is what the
//     goroutines wait behind; a saturated scheduler's wait shows no gradient until demand
//     falls below capacity). If so, the current point becomes the new reference and raising
//     may go on. If not, the waits are not the gateway's own doing: raising stops, and the
//     cutoff goes back to where it was before the useless step.
//   - Stay blocked until the waits clear or grow by half again (new overload on top of the
//     waits shedding could not shorten).
//   - Release: while every signal is below its threshold the cutoff rises by up to
//     starvationReleasePerSecond points a second, in proportion to the headroom (full speed
//     from half the threshold down), so it settles where the wait sits just under its
//     threshold instead of swinging around it.
//
// Both rates are below the 10 points a second the issue allows once settled, so no move
// between consecutive seconds can exceed it, and a step of the input cannot flip the cutoff
// between "shed nothing" and "shed everything".
const (
	starvationRaisePerSecond   = 8.0
	starvationReleasePerSecond = 4.0
	// starvationMinRaise is the least share of the full raise speed used while a signal is
	// above its threshold at all, so a wait just above it still moves the cutoff.
	starvationMinRaise = 0.2
	// starvationReleaseFullBelow is the headroom (fraction below the threshold) from which
	// the cutoff rises at full release speed.
	starvationReleaseFullBelow = 0.5
	// starvationSmoothing is the time constant of the wait ratio and the refused share the
	// judge compares (samples arrive every 250 ms and are noisy).
	starvationSmoothing = time.Second
	// starvationJudgeShare is how much more of the gateway's requests must be refused before
	// the wait is judged; starvationHelpDrop is the relative fall of the wait that counts
	// as help.
	starvationJudgeShare = 0.2
	starvationHelpDrop   = 0.1
	// starvationBacklog is the run queue (runnable goroutines per core, smoothed) from which
	// the waits count as the gateway's own backlog: shedding shortens them even while the
	// wait shows no gradient yet. A gateway starved by neighbours has few goroutines ready
	// per core; one past its capacity has its requests' goroutines queued behind each other.
	starvationBacklog = 4.0
	// starvationWorseBy unblocks a blocked controller when the wait grows by this factor.
	starvationWorseBy = 1.5
	// onsetDraining: a run queue below this share of the last period's is draining.
	onsetDraining = 0.9
)

// starvationInput is one tick's view of the controller's signals.
type starvationInput struct {
	// pressure is the worst overload fraction (0..1) of the signals; 0 below threshold.
	pressure float64
	// ratio is the worst value / threshold (1 = at threshold).
	ratio float64
	// refused and decided are the global scope's cumulative counts of requests it refused
	// (shed or would-shed) and of all it judged (refused + admitted).
	refused, decided uint64
	// floor is the lowest cutoff the controller may set.
	floor float64
	// busy: the gateway's own CPU use is at or above the cpu signal's threshold, so the
	// waits are (at least partly) its own work and shedding that work shortens them even
	// while the wait itself shows no gradient yet (a saturated scheduler's wait stays high
	// until the demand falls below capacity).
	busy bool
	// runQueue is the runnable goroutines per core right now.
	runQueue float64
	// onset is the last cpu period's evidence, for sizing the cut at an onset (onset.go).
	onset onsetEvidence
}

// starvationController: see the comment at the top of the file. Used under the scope's lock.
type starvationController struct {
	cutoff float64
	primed bool

	ratio    float64 // smoothed wait ratio
	runQueue float64 // smoothed runnable goroutines per core
	// refusedRate and decidedRate are smoothed per-second counts; their quotient is the
	// share of requests refused.
	refusedRate, decidedRate float64
	lastRefused, lastDecided uint64

	raising    bool
	refCutoff  float64
	refRatio   float64
	refShare   float64
	blocked    bool
	blockRatio float64

	// inOnset: the cut is being sized from evidence (onset.go); onsetElapsed is how long
	// for. armed: an onset may start, which needs onsetRearm of being clear at cutoff 100
	// (clearFor), and is possible only in the first onsetFor of an overload (overFor).
	inOnset      bool
	onsetElapsed float64
	// onsetRunQueue is the run queue when the onset last cut (below onsetDraining of it,
	// the backlog is draining: the cut works); onsetSettling: a cut was made at the last
	// cpu period, so the next one is not judged (it began before the cut).
	onsetRunQueue float64
	onsetSettling bool
	// periodRunQueue and periodTicks sum the run queue over the current cpu period.
	periodRunQueue float64
	periodTicks    int
	armed          bool
	clearFor       float64
	overFor        float64
	// onsets counts the onsets so far (admin).
	onsets uint64
}

// share is the smoothed share of requests refused.
func (c *starvationController) share() float64 {
	if c.decidedRate <= 0 {
		return 0
	}
	return c.refusedRate / c.decidedRate
}

// step advances the controller by dt and returns the cutoff.
func (c *starvationController) step(in starvationInput, dt time.Duration) float64 {
	if !c.primed {
		c.cutoff, c.ratio, c.primed = 100, in.ratio, true
		c.lastRefused, c.lastDecided = in.refused, in.decided
		c.armed = true
	}
	s := dt.Seconds()
	a := ewmaAlpha(s, starvationSmoothing.Seconds())
	c.ratio += a * (in.ratio - c.ratio)
	c.runQueue += a * (in.runQueue - c.runQueue)
	if s > 0 {
		dr, dd := float64(in.refused-c.lastRefused), float64(in.decided-c.lastDecided)
		if in.refused < c.lastRefused || in.decided < c.lastDecided {
			dr, dd = 0, 0
		}
		c.refusedRate += a * (dr/s - c.refusedRate)
		c.decidedRate += a * (dd/s - c.decidedRate)
	}
	c.lastRefused, c.lastDecided = in.refused, in.decided
	// The onset judges the run queue over the cpu period, not one noisy snapshot.
	c.periodRunQueue += in.runQueue
	c.periodTicks++
	if in.onset.fresh {
		in.runQueue = c.periodRunQueue / float64(c.periodTicks)
		in.onset.backlog = in.runQueue >= starvationBacklog
		c.periodRunQueue, c.periodTicks = 0, 0
	}

	if in.pressure > 0 || c.cutoff < 100 {
		c.clearFor = 0
	} else if c.clearFor += s; c.clearFor >= onsetRearm {
		c.armed = true
	}
	if in.pressure > 0 {
		if c.overFor += s; c.overFor > onsetFor {
			c.armed = false // the start of this overload is past: follow it smoothly
		}
	} else {
		c.overFor = 0
	}
	switch {
	case in.pressure <= 0:
		// Clear: back off, and forget any judgement (the next overload starts afresh).
		c.raising, c.blocked, c.inOnset = false, false, false
		headroom := max(0, 1-c.ratio)
		c.cutoff += starvationReleasePerSecond * s * min(1, headroom/starvationReleaseFullBelow)
	case c.inOnset || (c.armed && (in.busy || in.onset.backlog) && in.onset.fresh && !c.blocked):
		c.stepOnset(in, s)
	case c.blocked:
		if c.ratio > c.blockRatio*starvationWorseBy {
			c.blocked = false
			c.startRaising()
		} else if c.cutoff < c.refCutoff {
			// Shedding did not shorten the waits: give back what the useless step refused, as
			// fast as it was taken.
			c.cutoff = min(c.refCutoff, c.cutoff+starvationRaisePerSecond*s)
		}
	default:
		if !c.raising {
			c.startRaising()
		}
		if c.share()-c.refShare >= starvationJudgeShare {
			if in.busy || c.runQueue >= starvationBacklog || c.ratio <= c.refRatio*(1-starvationHelpDrop) {
				c.startRaising() // it helped: judge the next step from here
			} else {
				c.raising, c.blocked, c.blockRatio = false, true, c.ratio
				break
			}
		}
		c.cutoff -= starvationRaisePerSecond * s * max(starvationMinRaise, min(1, in.pressure))
	}
	c.cutoff = max(in.floor, min(100, c.cutoff))
	return c.cutoff
}

// stepOnset sizes the cut from the last cpu period's evidence (onset.go) and moves the
// cutoff there at once, only ever down; then, skipping the period that began before the
// cut, it cuts again only while the gateway is still busy and its backlog has not fallen
// since the last cut (a backlog that shrinks means the cut is working; cutting more on it
// would overshoot, and the smooth raise that follows the onset covers a cut too small). The onset ends when the
// work fits (no backlog, CPU below the threshold), onsetFor has passed or the floor is
// reached; then it judges from there like a raise.
func (c *starvationController) stepOnset(in starvationInput, s float64) {
	first := !c.inOnset
	if first {
		c.inOnset, c.onsetElapsed, c.armed = true, 0, false
		c.onsets++
		c.raising, c.blocked = false, false
	}
	c.onsetElapsed += s
	done := c.onsetElapsed >= onsetFor
	if ev := in.onset; ev.fresh {
		draining := !first && in.runQueue < onsetDraining*c.onsetRunQueue
		settling := c.onsetSettling
		c.onsetSettling = false
		switch {
		case !ev.backlog && !in.busy:
			done = true // the admitted work fits
		case draining || settling:
			// The last cut is working, or the period just ended began before it (its
			// CPU and counts are partly from before the cut): judge on the next one.
		default:
			c.onsetSettling, c.onsetRunQueue = true, in.runQueue
			if ev.backlog {
				ev.util = 1 // it used all the CPU it could get (onset.go)
			}
			if cut, ok := onsetCutoff(&ev, starvationRefusalCost); ok {
				c.cutoff = min(c.cutoff, max(in.floor, cut))
			} else {
				done = true
			}
		}
	}
	if done || c.cutoff <= in.floor {
		c.inOnset = false
		c.startRaising()
	}
}

// startRaising takes the current point as the reference the next judgement compares with.
func (c *starvationController) startRaising() {
	c.raising = true
	c.refCutoff, c.refRatio, c.refShare = c.cutoff, c.ratio, c.share()
}

// reset forgets everything (the signals were turned off).
func (c *starvationController) reset() { *c = starvationController{} }

// ratioOf is value / threshold, 0 for a disabled signal or a non-positive threshold.
func ratioOf(enabled bool, value, threshold float64) float64 {
	if !enabled || !(threshold > 0) || !finite(value) {
		return 0
	}
	return math.Max(0, value/threshold)
}

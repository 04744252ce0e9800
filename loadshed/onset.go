package loadshed

import "sync/atomic"

// The onset of the starvation controller: when the gateway's own work overloads its CPU,
// walking the cutoff band by band (at most starvationRaisePerSecond points a second) leaves
// it saturated for many seconds, and those seconds set the critical tail of the whole
// overload. So at the onset the controller sizes the cut from evidence instead and moves
// there at once:
//
//   - the CPU the gateway used over the last cpu sample (utilisation u of its cores), and
//     what it decided in the same period: how many requests of each score, how many of
//     them it refused. When its run queue shows its own backlog (starvationBacklog or
//     more runnable goroutines per core), it used all the CPU it could get, whatever share
//     of the cores that was (neighbours such as the load generator take the rest): u
//     counts as 1;
//   - the cost of a refusal relative to a proxied request (starvationRefusalCost, measured
//     by TestShedExperimentRejectionCost): a refused request is still read, parsed, scored
//     and answered.
//
// With W = admitted + refusalCost x refused (the period's work in proxied requests), the
// gateway's capacity at the target utilisation T (the cpu signal's threshold) is W x T / u
// of that work. It admits the lowest scores whose rate a fits
// a + refusalCost x (decided - a) <= W x T / u, and refuses the rest. While the CPU is
// saturated the decided rate understates the demand (requests wait unread), so the sizing
// is repeated on each new cpu sample during the onset (onsetFor at most), always downwards,
// while the gateway is still saturated and its backlog is not draining: each cut frees
// CPU, more of the waiting requests are read, and the next sample shows more of the
// demand. Then the onset ends and the controller moves smoothly again.
const (
	// starvationRefusalCost is a refused request's CPU as a share of a proxied one. Measured
	// 0.46-0.67 (TestShedExperimentRejectionCost, one core, loopback clients): the request
	// is read, parsed and answered either way, and the read and write system calls are
	// most of both. Overstating it sheds a little too much at the onset (the controller then
	// gives it back at its release rate); understating it is corrected by the next sample.
	starvationRefusalCost = 0.5
	// onsetFor bounds the onset: after it the controller judges and moves smoothly.
	onsetFor = 2.0 // seconds
	// onsetRearm is how long the controller must have been clear at cutoff 100 before a new
	// onset may jump: an overload that comes back at once is the same overload, and is
	// followed smoothly (a jump each time would be the oscillation the controller exists
	// to prevent).
	onsetRearm = 10.0 // seconds
)

// onsetEvidence is one cpu sample's period: utilisation and what was decided meanwhile.
type onsetEvidence struct {
	// fresh: a new cpu sample arrived this tick; the rest is valid only then.
	fresh bool
	// util is the gateway's CPU utilisation (0..1 of its cores) over the period, target the
	// utilisation to size for (the cpu signal's threshold).
	util, target float64
	// backlog: the run queue showed the gateway's own backlog over the period (its mean,
	// set by the controller), so it used all the CPU it could get.
	backlog bool
	// decided counts the requests judged per score over the period; refused how many of
	// them were refused (shed by the global scope or by chaos; dry-run would-sheds were
	// served, so they are not).
	decided [topScore + 1]float64
	refused float64
}

// onsetCutoff sizes the cutoff that brings the gateway's work to the target utilisation,
// from one period's evidence (util already measured against the CPU the gateway can get). ok is false when the evidence shows no excess (or none to
// size from). The cutoff admits scores from 0 up, with the band straddling a fractional
// cutoff admitted in proportion (as the scope does in hold mode).
func onsetCutoff(ev *onsetEvidence, refusalCost float64) (cutoff float64, ok bool) {
	if !ev.fresh || !(ev.util > ev.target) || !(ev.target > 0) {
		return 100, false
	}
	total := 0.0
	for _, n := range ev.decided {
		total += n
	}
	if total <= 0 {
		return 100, false
	}
	refused := min(ev.refused, total)
	work := total - refused + refusalCost*refused
	capacity := work * ev.target / ev.util
	// a + refusalCost x (total - a) <= capacity
	admit := (capacity - refusalCost*total) / (1 - refusalCost)
	if admit >= total {
		return 100, false
	}
	// The largest cutoff whose admitted rate is at most admit: score s is admitted whole
	// when s <= cutoff, in proportion cutoff+1-s when cutoff < s < cutoff+1.
	sum := ev.decided[0] // score 0 is never shed
	for s := 1; s <= topScore; s++ {
		n := ev.decided[s]
		if sum+n > admit {
			frac := 0.0
			if n > 0 {
				frac = max(0, admit-sum) / n
			}
			return float64(s-1) + frac, true
		}
		sum += n
	}
	return 100, false
}

// topScore is the least critical score.
const topScore = 100

// scoreCounters count events per score 0..topScore (the onset needs the demand per score,
// finer than the metric bands).
type scoreCounters [topScore + 1]atomic.Uint64

func (c *scoreCounters) inc(score int) { c[min(max(score, 0), topScore)].Add(1) }

package origins

import "time"

// LatencyEstimate is the instance's current peak-EWMA latency, decayed to
// now exactly as the picker sees it. It is for operators' views (the
// dashboard); the picker reads the estimate directly.
func (o *Origin) LatencyEstimate(in *Instance) time.Duration {
	p := o.pol.Load()
	return time.Duration(in.ewma.get(o.now(), p.tau))
}

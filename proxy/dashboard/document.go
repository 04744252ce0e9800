package dashboard

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// requestsMetric is the counter requests per status category are summed
// from (labels route, code_class, category).
const requestsMetric = "floodgate_requests_total"

// Document is what the page polls. Counters are cumulative since start;
// the page turns two consecutive documents into rates, so the server keeps
// no per-viewer state.
type Document struct {
	Time time.Time `json:"time"`
	// Scopes lists the global scope first, then each origin's, by name;
	// each carries the k of its curve, so the page draws
	// cutoff = 100 * (1 - k * x^3).
	Scopes []loadshed.ScopeSnapshot `json:"scopes"`
	// Chaos counts deliberate sheds per score band.
	Chaos loadshed.BandCounts `json:"chaos"`
	// Origins are sorted by name.
	Origins []Origin `json:"origins"`
	// Requests counts completed client requests per status category.
	Requests map[string]uint64 `json:"requests_by_category"`
	// RateLimits are the rate-limit policies, sorted by name.
	RateLimits []ratelimit.PolicyStats `json:"rate_limits"`
	// Extra holds sections other components contribute (for example the
	// TimeSeries store's queues), shown as key/value tables.
	Extra map[string]any `json:"extra,omitempty"`
}

// Origin is one origin and its instances (its adaptive limit is in its
// shedding scope).
type Origin struct {
	Name      string     `json:"name"`
	InFlight  int64      `json:"in_flight"`
	Instances []Instance `json:"instances"`
}

// Instance is one origin instance as the picker sees it.
type Instance struct {
	Address   string  `json:"address"`
	Weight    int     `json:"weight"`
	InFlight  int64   `json:"in_flight"`
	Breaker   string  `json:"breaker"`
	Healthy   bool    `json:"healthy"`
	LatencyMS float64 `json:"latency_ewma_ms"`
	Requests  uint64  `json:"requests"`
	Failures  uint64  `json:"failures"`
}

// Sources are the running components the document is read from. Nil
// fields are left out of the document.
type Sources struct {
	Shedder  *loadshed.Shedder
	Origins  *origins.Registry
	Limiters *ratelimit.Limiters
	// Metrics is gathered for request counts per category.
	Metrics prometheus.Gatherer
	// Extra sections, each called once per document.
	Extra map[string]func() any
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Document assembles the current view.
func (s *Sources) Document() Document {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	d := Document{Time: now().UTC(), Requests: map[string]uint64{}}
	if s.Shedder != nil {
		d.Scopes, d.Chaos = s.scopes()
	}
	if s.Origins != nil {
		d.Origins = s.origins()
	}
	if s.Metrics != nil {
		d.Requests = requestsByCategory(s.Metrics)
	}
	if s.Limiters != nil {
		d.RateLimits = s.Limiters.Stats()
	}
	if len(s.Extra) > 0 {
		d.Extra = make(map[string]any, len(s.Extra))
		for name, fn := range s.Extra {
			d.Extra[name] = fn()
		}
	}
	return d
}

func (s *Sources) scopes() ([]loadshed.ScopeSnapshot, loadshed.BandCounts) {
	snap := s.Shedder.Snapshot()
	return append([]loadshed.ScopeSnapshot{snap.Global}, snap.Origins...), snap.Chaos
}

func (s *Sources) origins() []Origin {
	names := s.Origins.Names()
	sort.Strings(names)
	out := make([]Origin, 0, len(names))
	for _, name := range names {
		o, ok := s.Origins.Get(name)
		if !ok {
			continue
		}
		v := Origin{Name: name, InFlight: o.InFlight(), Instances: []Instance{}}
		for _, in := range o.Instances() {
			v.Instances = append(v.Instances, Instance{
				Address: in.Addr(), Weight: in.Weight(), InFlight: in.InFlight(),
				Breaker: in.BreakerState().String(), Healthy: in.Healthy(),
				LatencyMS: float64(o.LatencyEstimate(in)) / float64(time.Millisecond),
				Requests:  in.Requests(), Failures: in.Failures(),
			})
		}
		out = append(out, v)
	}
	return out
}

// requestsByCategory sums the request counter over routes and status
// classes. A gathering error leaves the counts it could read.
func requestsByCategory(g prometheus.Gatherer) map[string]uint64 {
	out := map[string]uint64{}
	families, _ := g.Gather()
	for _, f := range families {
		if f.GetName() != requestsMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "category" {
					out[l.GetValue()] += uint64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

package metrics

import "github.com/prometheus/client_golang/prometheus"

// BandCount is a cumulative count for one priority band (e.g. "80-89").
type BandCount struct {
	Band  string
	Count uint64
}

// ShedScope is one shedding scope's state, read at scrape time.
type ShedScope struct {
	// Scope is "global" or the origin's name.
	Scope string
	// Overload is the scope's overload fraction 0..1, Cutoff its priority
	// cutoff 0..100 (requests scoring above it are shed).
	Overload float64
	Cutoff   float64
	// Shed counts requests shed, WouldShed requests a dry-run scope would
	// have shed, per band since the scope was created.
	Shed      []BandCount
	WouldShed []BandCount
}

// SetShedSource makes the floodgate_shed_* metrics report fn() at each
// scrape. The shedder already keeps cumulative per-band counters and its
// current cutoff; reading them at scrape time keeps the shedding hot path
// free of metric updates.
func (m *Metrics) SetShedSource(fn func() []ShedScope) { m.shed.Store(&fn) }

var (
	shedDesc = prometheus.NewDesc(Namespace+"_shed_total",
		"Requests shed, by scope (global or origin name) and priority band.", []string{"scope", "band"}, nil)
	shedWouldDesc = prometheus.NewDesc(Namespace+"_shed_would_total",
		"Requests a dry-run scope would have shed, by scope and priority band.", []string{"scope", "band"}, nil)
	shedCutoffDesc = prometheus.NewDesc(Namespace+"_shed_cutoff",
		"Priority cutoff of a scope: requests scoring above it are shed (100 sheds nothing).", []string{"scope"}, nil)
	shedOverloadDesc = prometheus.NewDesc(Namespace+"_shed_overload",
		"Overload fraction of a scope, 0..1, from its worst signal.", []string{"scope"}, nil)
)

type shedCollector struct{ m *Metrics }

func (c *shedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- shedDesc
	ch <- shedWouldDesc
	ch <- shedCutoffDesc
	ch <- shedOverloadDesc
}

func (c *shedCollector) Collect(ch chan<- prometheus.Metric) {
	fn := c.m.shed.Load()
	if fn == nil {
		return
	}
	seen := map[string]bool{}
	for _, s := range (*fn)() {
		if seen[s.Scope] {
			continue
		}
		seen[s.Scope] = true
		ch <- prometheus.MustNewConstMetric(shedCutoffDesc, prometheus.GaugeValue, s.Cutoff, s.Scope)
		ch <- prometheus.MustNewConstMetric(shedOverloadDesc, prometheus.GaugeValue, s.Overload, s.Scope)
		emitBands(ch, shedDesc, s.Scope, s.Shed)
		emitBands(ch, shedWouldDesc, s.Scope, s.WouldShed)
	}
}

func emitBands(ch chan<- prometheus.Metric, desc *prometheus.Desc, scope string, bands []BandCount) {
	seen := map[string]bool{}
	for _, b := range bands {
		if seen[b.Band] {
			continue
		}
		seen[b.Band] = true
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(b.Count), scope, b.Band)
	}
}

package metrics

import "github.com/prometheus/client_golang/prometheus"

// GroupMember is one member of an origin group at scrape time.
type GroupMember struct {
	Group, Origin string
	Active        bool
}

// Failovers is how often an origin group moved from one member to another
// for a reason (the member's unhealthy verdict, or "failback").
type Failovers struct {
	Group, From, To, Reason string
	Count                   uint64
}

// OutlierState is an origin's outlier detection at scrape time.
type OutlierState struct {
	Origin string
	// Ejected is the number of instances out now.
	Ejected int
	// Ejections counts ejections so far by reason.
	Ejections map[string]uint64
}

// TrafficSources are read at each scrape: the origin groups' members and
// failover counts, and every origin's outlier detection. Counters kept by
// the origins package are exported as they are, so the request path pays
// nothing for these series.
type TrafficSources struct {
	Groups   func() ([]GroupMember, []Failovers)
	Outliers func() []OutlierState
}

var (
	groupActiveDesc = prometheus.NewDesc(Namespace+"_origin_group_active",
		"1 for the origin an origin group sends to now, 0 for its other members.", []string{"group", "origin"}, nil)
	groupFailoversDesc = prometheus.NewDesc(Namespace+"_origin_group_failovers_total",
		"Changes of an origin group's active origin, by the reason the one left was judged unhealthy (or failback).",
		[]string{"group", "from", "to", "reason"}, nil)
	outlierEjectionsDesc = prometheus.NewDesc(Namespace+"_origin_outlier_ejections_total",
		"Instances ejected by outlier detection, by reason.", []string{"origin", "reason"}, nil)
	instancesEjectedDesc = prometheus.NewDesc(Namespace+"_origin_instances_ejected",
		"Instances of an origin ejected by outlier detection now.", []string{"origin"}, nil)
)

// RegisterTrafficSources adds floodgate_origin_group_active,
// floodgate_origin_group_failovers_total,
// floodgate_origin_outlier_ejections_total and
// floodgate_origin_instances_ejected, read from src at each scrape. Call it
// once, when wiring the origin registry.
func (m *Metrics) RegisterTrafficSources(src TrafficSources) {
	m.reg.MustRegister(&trafficCollector{src: src})
}

type trafficCollector struct{ src TrafficSources }

func (c *trafficCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- groupActiveDesc
	ch <- groupFailoversDesc
	ch <- outlierEjectionsDesc
	ch <- instancesEjectedDesc
}

func (c *trafficCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Groups != nil {
		members, failovers := c.src.Groups()
		for _, m := range members {
			v := 0.0
			if m.Active {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(groupActiveDesc, prometheus.GaugeValue, v, m.Group, m.Origin)
		}
		for _, f := range failovers {
			ch <- prometheus.MustNewConstMetric(groupFailoversDesc, prometheus.CounterValue, float64(f.Count), f.Group, f.From, f.To, f.Reason)
		}
	}
	if c.src.Outliers != nil {
		for _, o := range c.src.Outliers() {
			ch <- prometheus.MustNewConstMetric(instancesEjectedDesc, prometheus.GaugeValue, float64(o.Ejected), o.Origin)
			for reason, n := range o.Ejections {
				ch <- prometheus.MustNewConstMetric(outlierEjectionsDesc, prometheus.CounterValue, float64(n), o.Origin, reason)
			}
		}
	}
}

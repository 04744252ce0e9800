package timeseries

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the store's async queues as Prometheus metrics, read at scrape time:
// depth and memory against their bounds, and the acknowledged events lost to failed writes.
// Register it once per Service (names are prefixed floodgate_timeseries_).
func (s *Service) Collector() prometheus.Collector { return queueCollector{s} }

var (
	queueEventsDesc = prometheus.NewDesc("floodgate_timeseries_queue_events",
		"Async events queued or being written, by namespace.", []string{"namespace"}, nil)
	queueBytesDesc = prometheus.NewDesc("floodgate_timeseries_queue_bytes",
		"Approximate memory held by queued async events, by namespace.", []string{"namespace"}, nil)
	queueCapEventsDesc = prometheus.NewDesc("floodgate_timeseries_queue_capacity_events",
		"queue_buffering.buffer_capacity: the most events the async queue holds, by namespace.", []string{"namespace"}, nil)
	queueCapBytesDesc = prometheus.NewDesc("floodgate_timeseries_queue_capacity_bytes",
		"queue_buffering.buffer_bytes: the most memory the async queue holds, by namespace.", []string{"namespace"}, nil)
	lostDesc = prometheus.NewDesc("floodgate_timeseries_async_events_lost_total",
		"Acknowledged (202) async events whose write failed after retries, by namespace.", []string{"namespace"}, nil)
)

type queueCollector struct{ s *Service }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueEventsDesc, queueBytesDesc, queueCapEventsDesc, queueCapBytesDesc, lostDesc} {
		ch <- d
	}
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.s.QueueStats()
	names := make([]string, 0, len(stats))
	for n := range stats {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		q := stats[n]
		ch <- prometheus.MustNewConstMetric(queueEventsDesc, prometheus.GaugeValue, float64(q.Held), n)
		ch <- prometheus.MustNewConstMetric(queueBytesDesc, prometheus.GaugeValue, float64(q.HeldBytes), n)
		ch <- prometheus.MustNewConstMetric(queueCapEventsDesc, prometheus.GaugeValue, float64(q.Capacity), n)
		ch <- prometheus.MustNewConstMetric(queueCapBytesDesc, prometheus.GaugeValue, float64(q.CapacityBytes), n)
		ch <- prometheus.MustNewConstMetric(lostDesc, prometheus.CounterValue, float64(q.Lost), n)
	}
}

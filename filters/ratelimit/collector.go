package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floodgate-dev/floodgate/ratelimit"
)

// Collector exports the state of every rate-limit and concurrency policy,
// and of the Redis connection, at scrape time. Register it once in the
// gateway's metrics registry.
type Collector struct {
	lim *ratelimit.Limiters

	keys, maxKeys, overflow, overflowRejected, fallbacks *prometheus.Desc
	redisBreaker, redisErrors                            *prometheus.Desc
	concInFlight, concMax, concRejected, concFallbacks   *prometheus.Desc
}

// NewCollector returns a collector over lim.
func NewCollector(lim *ratelimit.Limiters) *Collector {
	policy := []string{"policy"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("floodgate_"+name, help, labels, nil)
	}
	return &Collector{
		lim:              lim,
		keys:             d("rate_limit_keys", "Keys with a bucket of their own in this process, by rate-limit policy (the fallback buckets of a redis policy).", policy),
		maxKeys:          d("rate_limit_max_keys", "The policy's cap on tracked keys; past it new keys share the overflow bucket.", policy),
		overflow:         d("rate_limit_overflow_total", "Requests charged to the shared overflow bucket because the policy's key table was full.", policy),
		overflowRejected: d("rate_limit_overflow_rejected_total", "Requests the overflow bucket rejected.", policy),
		fallbacks:        d("rate_limit_fallbacks_total", "Decisions of a redis policy made by the local bucket because Redis failed or its breaker was open.", policy),
		redisBreaker:     d("rate_limit_redis_breaker_state", "The Redis connection's breaker: 0 closed (deciding in Redis), 1 half-open (probing), 2 open (deciding locally).", nil),
		redisErrors:      d("rate_limit_redis_errors_total", "Failed or timed-out calls to Redis (each decided locally instead).", nil),
		concInFlight:     d("concurrency_in_flight", "Requests holding a slot of a concurrency policy in this process.", policy),
		concMax:          d("concurrency_max", "A concurrency policy's limit per key.", policy),
		concRejected:     d("concurrency_limited_total", "Requests rejected with 429 by a concurrency policy.", policy),
		concFallbacks:    d("concurrency_fallbacks_total", "Slots of a redis concurrency policy counted locally because Redis failed or its breaker was open.", policy),
	}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.keys, c.maxKeys, c.overflow, c.overflowRejected, c.fallbacks,
		c.redisBreaker, c.redisErrors, c.concInFlight, c.concMax, c.concRejected, c.concFallbacks} {
		ch <- d
	}
}

// Collect reads the policies' counters.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range c.lim.Stats() {
		gauge(c.keys, float64(p.Keys), p.Name)
		gauge(c.maxKeys, float64(p.MaxKeys), p.Name)
		counter(c.overflow, p.Overflowed, p.Name)
		counter(c.overflowRejected, p.OverflowRejected, p.Name)
		counter(c.fallbacks, p.Fallbacks, p.Name)
	}
	for _, p := range c.lim.ConcurrencyStats() {
		gauge(c.concInFlight, float64(p.InFlight), p.Name)
		gauge(c.concMax, float64(p.Max), p.Name)
		counter(c.concRejected, p.Rejected, p.Name)
		counter(c.concFallbacks, p.Fallbacks, p.Name)
	}
	if rs := c.lim.RedisStats(); rs.Configured {
		gauge(c.redisBreaker, float64(rs.Breaker))
		counter(c.redisErrors, rs.Errors)
	}
}

var _ prometheus.Collector = (*Collector)(nil)

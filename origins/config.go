package origins

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// LB names an instance selection strategy.
type LB string

// Supported load-balancing strategies.
const (
	LBP2C        LB = "p2c"
	LBRoundRobin LB = "round_robin"
)

// OriginConfig is the tunable description of one origin. Decode YAML over
// DefaultOriginConfig() so omitted keys keep their defaults; a zero-valued struct does
// not validate (timeouts and windows must be positive), which is deliberate: a map
// entry decoded without defaults fails loudly instead of running with zeros.
type OriginConfig struct {
	// Exactly one discovery source (discovery.go) is set: its YAML key
	// selects it and holds its options.

	// Instances is a static instance list.
	Instances []InstanceConfig `mapstructure:"instances"`
	// Consul enables discovery through Consul's health endpoint.
	Consul *ConsulConfig `mapstructure:"consul"`
	// Discovery holds the options of registered sources that have no field
	// of their own, by key; DecodeOrigins fills it.
	Discovery map[string]any `mapstructure:"-"`

	LB       LB             `mapstructure:"lb"`
	Timeouts TimeoutsConfig `mapstructure:"timeouts"`
	// MaxConcurrency caps in-flight attempts to the whole origin; 0 means unlimited.
	MaxConcurrency int `mapstructure:"max_concurrency"`
	// MaxConnsPerInstance is for the proxy's connection pool; origins only validates it.
	MaxConnsPerInstance int `mapstructure:"max_conns_per_instance"`
	// IdleConnTimeout closes the proxy's pooled connections idle this long;
	// origins only validates it.
	IdleConnTimeout time.Duration `mapstructure:"idle_conn_timeout"`
	Breaker         BreakerConfig `mapstructure:"breaker"`
	// PanicThreshold is a percentage: when fewer than this share of instances is
	// eligible, picks ignore breakers and health and spread over all instances (Envoy's
	// panic mode). 0 disables panic mode.
	PanicThreshold float64           `mapstructure:"panic_threshold"`
	Retry          RetryConfig       `mapstructure:"retry"`
	Hedge          HedgeConfig       `mapstructure:"hedge"`
	HealthCheck    HealthCheckConfig `mapstructure:"health_check"`
	Latency        LatencyConfig     `mapstructure:"latency"`
	// AdaptiveLimit learns the concurrency the origin sustains; the
	// origin's load-shedding scope sheds by priority against it.
	AdaptiveLimit AdaptiveLimitConfig `mapstructure:"adaptive_limit"`
	// TLS makes requests and health checks to the instances speak TLS.
	TLS tlsconf.ClientConfig `mapstructure:"tls"`
	// OutlierDetection ejects instances that fail in a row or stand out
	// from their peers (outlier_config.go); off by default.
	OutlierDetection OutlierConfig `mapstructure:"outlier_detection"`
}

// InstanceConfig is one static instance.
type InstanceConfig struct {
	Address string `mapstructure:"address"` // host:port
	Weight  int    `mapstructure:"weight"`  // 0 means 1
}

// TimeoutsConfig is used by the proxy; origins only validates it.
type TimeoutsConfig struct {
	Connect  time.Duration `mapstructure:"connect"`
	Response time.Duration `mapstructure:"response"`
}

// BreakerConfig configures the per-instance circuit breaker. A breaker opens when
// ConsecutiveFailures is reached, or when FailureRatio is reached over at least
// MinRequests requests counted in a rolling Interval. Either trigger may be disabled
// with 0, not both.
type BreakerConfig struct {
	ConsecutiveFailures uint32        `mapstructure:"consecutive_failures"`
	FailureRatio        float64       `mapstructure:"failure_ratio"`
	MinRequests         uint32        `mapstructure:"min_requests"`
	Interval            time.Duration `mapstructure:"interval"`
	OpenTimeout         time.Duration `mapstructure:"open_timeout"`
	// HalfOpenMax is both the number of concurrent probes allowed while half-open and
	// the number of consecutive successful probes needed to close.
	HalfOpenMax uint32 `mapstructure:"half_open_max"`
}

// RetryConfig is the retry policy. Attempts counts every try, the first included.
type RetryConfig struct {
	Attempts   int          `mapstructure:"attempts"`
	OnStatuses []int        `mapstructure:"on_statuses"`
	Budget     BudgetConfig `mapstructure:"budget"`
}

// BudgetConfig bounds retries and hedges per origin: over the sliding Window, extra
// attempts may not exceed Ratio * requests + MinPerSecond * Window seconds.
type BudgetConfig struct {
	Ratio        float64       `mapstructure:"ratio"`
	MinPerSecond float64       `mapstructure:"min_per_second"`
	Window       time.Duration `mapstructure:"window"`
}

// HedgeConfig enables hedging when Delay or Percentile is set. With Percentile (e.g.
// 95), the hedge fires after that percentile of the origin's recent successful
// latencies once MinSamples are known; Delay is then the fallback before that (0: no
// hedge until warm). MaxDelay caps a percentile-derived delay (0: no cap).
type HedgeConfig struct {
	Delay      time.Duration `mapstructure:"delay"`
	Percentile float64       `mapstructure:"percentile"`
	MinSamples int           `mapstructure:"min_samples"`
	MaxDelay   time.Duration `mapstructure:"max_delay"`
}

// HealthCheckConfig enables active health checks when Interval > 0.
type HealthCheckConfig struct {
	Interval           time.Duration `mapstructure:"interval"`
	Timeout            time.Duration `mapstructure:"timeout"`
	Path               string        `mapstructure:"path"`
	ExpectedStatus     int           `mapstructure:"expected_status"`
	HealthyThreshold   int           `mapstructure:"healthy_threshold"`
	UnhealthyThreshold int           `mapstructure:"unhealthy_threshold"`
}

// LatencyConfig tunes the peak-EWMA load estimate.
type LatencyConfig struct {
	// Decay is the EWMA time constant: an old observation weighs 1/e after Decay.
	Decay time.Duration `mapstructure:"decay"`
	// DefaultRTT seeds instances that have no observation yet.
	DefaultRTT time.Duration `mapstructure:"default_rtt"`
	// FailurePenalty is the latency a failed attempt is recorded as (if larger than the
	// real one), so a fast-failing instance looks slow instead of idle.
	FailurePenalty time.Duration `mapstructure:"failure_penalty"`
}

// DefaultOriginConfig returns the defaults. It has no instances: those must come from
// configuration.
func DefaultOriginConfig() OriginConfig {
	return OriginConfig{
		LB:                  LBP2C,
		Timeouts:            TimeoutsConfig{Connect: time.Second, Response: 10 * time.Second},
		MaxConcurrency:      0,
		MaxConnsPerInstance: 512,
		IdleConnTimeout:     30 * time.Second,
		Breaker: BreakerConfig{
			ConsecutiveFailures: 5,
			FailureRatio:        0.5,
			MinRequests:         20,
			Interval:            10 * time.Second,
			OpenTimeout:         5 * time.Second,
			HalfOpenMax:         3,
		},
		PanicThreshold: 50,
		Retry: RetryConfig{
			Attempts:   2,
			OnStatuses: []int{503},
			Budget:     BudgetConfig{Ratio: 0.2, MinPerSecond: 10, Window: 10 * time.Second},
		},
		Hedge: HedgeConfig{MinSamples: 100},
		HealthCheck: HealthCheckConfig{
			Timeout:            time.Second,
			Path:               "/healthz",
			ExpectedStatus:     200,
			HealthyThreshold:   2,
			UnhealthyThreshold: 3,
		},
		Latency: LatencyConfig{
			Decay:          10 * time.Second,
			DefaultRTT:     30 * time.Millisecond,
			FailurePenalty: time.Second,
		},
		AdaptiveLimit:    DefaultAdaptiveLimitConfig(),
		OutlierDetection: DefaultOutlierConfig(),
	}
}

// Validate checks c and names every bad field by its key path relative to the origin.
func (c OriginConfig) Validate() error {
	var fe decode.Errors
	validateDiscovery(c, &fe)
	if err := validBalancer(c.LB); err != nil {
		fe.Add("lb", "%v", err)
	}
	if c.Timeouts.Connect <= 0 {
		fe.Add("timeouts.connect", "must be positive")
	}
	if c.Timeouts.Response <= 0 {
		fe.Add("timeouts.response", "must be positive")
	}
	if c.MaxConcurrency < 0 {
		fe.Add("max_concurrency", "must be >= 0 (0 means unlimited)")
	}
	if c.MaxConnsPerInstance <= 0 {
		fe.Add("max_conns_per_instance", "must be positive")
	}
	c.AdaptiveLimit.validate(&fe, "adaptive_limit")
	c.OutlierDetection.validate(&fe, "outlier_detection")
	b := c.Breaker
	if b.ConsecutiveFailures == 0 && b.FailureRatio == 0 {
		fe.Add("breaker", "set consecutive_failures or failure_ratio (or both)")
	}
	if b.FailureRatio < 0 || b.FailureRatio > 1 {
		fe.Add("breaker.failure_ratio", "must be in [0, 1], got %v", b.FailureRatio)
	}
	if b.FailureRatio > 0 && b.MinRequests == 0 {
		fe.Add("breaker.min_requests", "must be positive when failure_ratio is set")
	}
	if b.Interval <= 0 {
		fe.Add("breaker.interval", "must be positive")
	}
	if b.OpenTimeout <= 0 {
		fe.Add("breaker.open_timeout", "must be positive")
	}
	if b.HalfOpenMax == 0 {
		fe.Add("breaker.half_open_max", "must be positive")
	}
	if c.PanicThreshold < 0 || c.PanicThreshold > 100 {
		fe.Add("panic_threshold", "must be a percentage in [0, 100], got %v", c.PanicThreshold)
	}
	r := c.Retry
	if r.Attempts < 1 || r.Attempts > 10 {
		fe.Add("retry.attempts", "must be between 1 (no retry) and 10, got %d", r.Attempts)
	}
	for i, s := range r.OnStatuses {
		if s < 100 || s > 599 {
			fe.Add("retry.on_statuses["+strconv.Itoa(i)+"]", "not an HTTP status: %d", s)
		}
	}
	if r.Budget.Ratio < 0 || r.Budget.Ratio > 1 {
		fe.Add("retry.budget.ratio", "must be in [0, 1], got %v", r.Budget.Ratio)
	}
	if r.Budget.MinPerSecond < 0 {
		fe.Add("retry.budget.min_per_second", "must be >= 0")
	}
	if r.Budget.Window < time.Second/10 {
		fe.Add("retry.budget.window", "must be at least 100ms")
	}
	h := c.Hedge
	if h.Delay < 0 {
		fe.Add("hedge.delay", "must be >= 0")
	}
	if h.Percentile < 0 || h.Percentile >= 100 {
		fe.Add("hedge.percentile", "must be in (0, 100) or 0 to disable, got %v", h.Percentile)
	}
	if h.Percentile > 0 && h.MinSamples < 1 {
		fe.Add("hedge.min_samples", "must be positive when percentile is set")
	}
	if h.MaxDelay < 0 {
		fe.Add("hedge.max_delay", "must be >= 0")
	}
	hc := c.HealthCheck
	if hc.Interval < 0 {
		fe.Add("health_check.interval", "must be >= 0 (0 disables)")
	}
	if hc.Interval > 0 {
		if hc.Timeout <= 0 {
			fe.Add("health_check.timeout", "must be positive")
		}
		if !strings.HasPrefix(hc.Path, "/") {
			fe.Add("health_check.path", "must start with '/', got %q", hc.Path)
		}
		if hc.ExpectedStatus < 100 || hc.ExpectedStatus > 599 {
			fe.Add("health_check.expected_status", "not an HTTP status: %d", hc.ExpectedStatus)
		}
		if hc.HealthyThreshold < 1 {
			fe.Add("health_check.healthy_threshold", "must be positive")
		}
		if hc.UnhealthyThreshold < 1 {
			fe.Add("health_check.unhealthy_threshold", "must be positive")
		}
	}
	fe.Merge("tls", c.TLS.Validate())
	l := c.Latency
	if l.Decay <= 0 {
		fe.Add("latency.decay", "must be positive")
	}
	if l.DefaultRTT <= 0 {
		fe.Add("latency.default_rtt", "must be positive")
	}
	if l.FailurePenalty < 0 {
		fe.Add("latency.failure_penalty", "must be >= 0")
	}
	return fe.Err()
}

func validateHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", addr)
	}
	if host == "" {
		return fmt.Errorf("missing host in %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("bad port in %q", addr)
	}
	return nil
}

// ValidateOrigins validates a set of named origins; errors are prefixed with the
// origin name (the caller adds its own prefix, e.g. "origins.").
func ValidateOrigins(cfgs map[string]OriginConfig) error {
	var errs decode.Errors
	for _, n := range slices.Sorted(maps.Keys(cfgs)) {
		if !validName(n) {
			errs.Add(n, "origin names may use only a-z, 0-9, '-' and '_'")
			continue
		}
		errs.Merge(n, cfgs[n].Validate())
	}
	return errs.Err()
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// DecodeOrigins decodes the origins section: a map of origin name to its
// settings, each decoded over DefaultOriginConfig() (and a discovery
// source's block over that source's defaults) so omitted keys keep their defaults. Names are
// case-insensitive and lower-cased, as routes refer to them. Problems name
// their key path under at; validation is ValidateOrigins'.
func DecodeOrigins(at string, raw any) (map[string]OriginConfig, error) {
	var errs decode.Errors
	m, ok := raw.(map[string]any)
	if !ok {
		errs.Add(at, "must be a map of origin names to origin settings")
		return nil, errs.Err()
	}
	out := make(map[string]OriginConfig, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		path := decode.JoinPath(at, name)
		oc := DefaultOriginConfig()
		fields, ok := m[name].(map[string]any)
		if !ok {
			errs.Add(path, "must be a map of origin settings")
			continue
		}
		rest, srcErr := decodeDiscovery(fields, &oc)
		errs.Merge(path, srcErr)
		if err := decode.Decode(rest, &oc); err != nil || srcErr != nil {
			errs.Merge(path, err)
			continue
		}
		out[strings.ToLower(name)] = oc
	}
	return out, errs.Err()
}

// Override returns t with the fields route sets (non-zero) replacing its
// own: a route's timeouts override its origin's.
func (t TimeoutsConfig) Override(route TimeoutsConfig) TimeoutsConfig {
	if route.Connect > 0 {
		t.Connect = route.Connect
	}
	if route.Response > 0 {
		t.Response = route.Response
	}
	return t
}

// decodeDiscovery decodes the keys of fields that select a discovery source
// decoding its own options into oc, and returns the other fields.
func decodeDiscovery(fields map[string]any, oc *OriginConfig) (map[string]any, error) {
	var errs decode.Errors
	rest := make(map[string]any, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		s := discoverySourceByKey(k)
		if s == nil || s.decode == nil {
			rest[k] = fields[k]
			continue
		}
		if fields[k] == nil {
			continue // an empty block selects nothing, as if absent
		}
		errs.Merge(k, s.decode(fields[k], oc))
	}
	return rest, errs.Err()
}

package loadshed

import "time"

// OriginOverride tunes one origin on top of Config.Origin. Only the keys
// present in YAML are set (nil pointers inherit), so an SRE can write
// `origins: {search: {signals: {inflight: {max: 300}}}}` without restating
// everything else.
type OriginOverride struct {
	DryRun     *bool                 `mapstructure:"dry_run"`
	K          *float64              `mapstructure:"k"`
	Hysteresis *float64              `mapstructure:"hysteresis"`
	Smoothing  SmoothingOverride     `mapstructure:"smoothing"`
	Controller ControllerOverride    `mapstructure:"controller"`
	Signals    OriginSignalsOverride `mapstructure:"signals"`
	Queue      QueueOverride         `mapstructure:"queue"`
}

// QueueOverride overrides QueueConfig fields.
type QueueOverride struct {
	Enabled *bool          `mapstructure:"enabled"`
	MaxWait *time.Duration `mapstructure:"max_wait"`
	Length  *float64       `mapstructure:"length"`
}

// ControllerOverride overrides ControllerConfig fields.
type ControllerOverride struct {
	Mode    *string        `mapstructure:"mode"`
	Raise   *time.Duration `mapstructure:"raise"`
	Release *time.Duration `mapstructure:"release"`
	Damping *float64       `mapstructure:"damping"`
}

// SmoothingOverride overrides SmoothingConfig fields.
type SmoothingOverride struct {
	Rise *time.Duration `mapstructure:"rise"`
	Fall *time.Duration `mapstructure:"fall"`
}

// OriginSignalsOverride overrides OriginSignals fields.
type OriginSignalsOverride struct {
	Concurrency SignalOverride    `mapstructure:"concurrency"`
	Inflight    SignalOverride    `mapstructure:"inflight"`
	ErrorRate   ErrorRateOverride `mapstructure:"error_rate"`
	Latency     LatencyOverride   `mapstructure:"latency"`
}

// SignalOverride overrides SignalConfig fields.
type SignalOverride struct {
	Enabled   *bool    `mapstructure:"enabled"`
	Threshold *float64 `mapstructure:"threshold"`
	Max       *float64 `mapstructure:"max"`
}

// ErrorRateOverride overrides ErrorRateSignalConfig fields.
type ErrorRateOverride struct {
	Enabled     *bool          `mapstructure:"enabled"`
	Threshold   *float64       `mapstructure:"threshold"`
	Max         *float64       `mapstructure:"max"`
	Window      *time.Duration `mapstructure:"window"`
	Buckets     *int           `mapstructure:"buckets"`
	MinRequests *int           `mapstructure:"min_requests"`
}

// LatencyOverride overrides LatencySignalConfig fields.
type LatencyOverride struct {
	Enabled    *bool          `mapstructure:"enabled"`
	Threshold  *time.Duration `mapstructure:"threshold"`
	Max        *time.Duration `mapstructure:"max"`
	MinSamples *int           `mapstructure:"min_samples"`
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// Apply returns base with every set field of o replacing base's.
func (o OriginOverride) Apply(base OriginConfig) OriginConfig {
	set(&base.DryRun, o.DryRun)
	set(&base.K, o.K)
	set(&base.Hysteresis, o.Hysteresis)
	set(&base.Smoothing.Rise, o.Smoothing.Rise)
	set(&base.Smoothing.Fall, o.Smoothing.Fall)
	set(&base.Queue.Enabled, o.Queue.Enabled)
	set(&base.Queue.MaxWait, o.Queue.MaxWait)
	set(&base.Queue.Length, o.Queue.Length)
	set(&base.Controller.Mode, o.Controller.Mode)
	set(&base.Controller.Raise, o.Controller.Raise)
	set(&base.Controller.Release, o.Controller.Release)
	set(&base.Controller.Damping, o.Controller.Damping)
	s, os := &base.Signals, o.Signals
	set(&s.Concurrency.Enabled, os.Concurrency.Enabled)
	set(&s.Concurrency.Threshold, os.Concurrency.Threshold)
	set(&s.Concurrency.Max, os.Concurrency.Max)
	set(&s.Inflight.Enabled, os.Inflight.Enabled)
	set(&s.Inflight.Threshold, os.Inflight.Threshold)
	set(&s.Inflight.Max, os.Inflight.Max)
	set(&s.ErrorRate.Enabled, os.ErrorRate.Enabled)
	set(&s.ErrorRate.Threshold, os.ErrorRate.Threshold)
	set(&s.ErrorRate.Max, os.ErrorRate.Max)
	set(&s.ErrorRate.Window, os.ErrorRate.Window)
	set(&s.ErrorRate.Buckets, os.ErrorRate.Buckets)
	set(&s.ErrorRate.MinRequests, os.ErrorRate.MinRequests)
	set(&s.Latency.Enabled, os.Latency.Enabled)
	set(&s.Latency.Threshold, os.Latency.Threshold)
	set(&s.Latency.Max, os.Latency.Max)
	set(&s.Latency.MinSamples, os.Latency.MinSamples)
	return base
}

// OriginConfigFor returns the effective configuration of the named origin.
func (c Config) OriginConfigFor(name string) OriginConfig {
	if o, ok := c.Origins[name]; ok {
		return o.Apply(c.Origin)
	}
	return c.Origin
}

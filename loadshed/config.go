package loadshed

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/trust"
)

// Config is the whole load-shedding configuration. It is plain data meant to
// be decoded from YAML by the gateway's config loader; call Validate before
// handing it to New or Shedder.Update (both validate again).
type Config struct {
	// Interval is how often signals are sampled, smoothed and the cutoffs
	// republished. Live changes apply from the next tick.
	Interval time.Duration `mapstructure:"interval"`
	// Scoring assigns every request its priority score.
	Scoring ScoringConfig `mapstructure:"scoring"`
	// Global is the gateway-wide scope, checked early in the inbound chain.
	Global GlobalConfig `mapstructure:"global"`
	// Origin is the configuration every origin scope gets unless Origins
	// holds an entry for that origin name.
	Origin OriginConfig `mapstructure:"origin"`
	// Origins tunes named origins on top of Origin: keys given replace
	// Origin's, keys omitted inherit them.
	Origins map[string]OriginOverride `mapstructure:"origins"`
	// Chaos sheds chosen traffic on purpose to rehearse failures.
	Chaos ChaosConfig `mapstructure:"chaos"`
	// RetryAfter shapes the Retry-After header of shed responses.
	RetryAfter RetryAfterConfig `mapstructure:"retry_after"`
}

// ScoringConfig holds the ordered rule list that maps a request to a score.
type ScoringConfig struct {
	// DefaultScore is the starting score of every request, before rules.
	DefaultScore int `mapstructure:"default_score"`
	// Rules run in order; each matching rule sets or adjusts the score.
	Rules []RuleConfig `mapstructure:"rules"`
	// PriorityHeader lets trusted callers state their own score.
	PriorityHeader PriorityHeaderConfig `mapstructure:"priority_header"`
}

// PriorityHeaderConfig names a header whose integer value (0..100) becomes
// the request's score, bypassing the rules, but only when the client address
// is inside one of TrustedCIDRs or its verified TLS client certificate
// carries one of TrustedIdentities ("spiffe://...", "dns:NAME", "cn:NAME").
// From anyone else the header is ignored.
type PriorityHeaderConfig struct {
	Name              string   `mapstructure:"name"`
	TrustedCIDRs      []string `mapstructure:"trusted_cidrs"`
	TrustedIdentities []string `mapstructure:"trusted_identities"`
}

// RuleConfig is one scoring rule. All criteria given in Match must hold
// (AND); inside a list any element may match (OR). Exactly one of Set and Add
// must be given.
type RuleConfig struct {
	// Name appears in validation errors and docs only.
	Name  string      `mapstructure:"name"`
	Match MatchConfig `mapstructure:"match"`
	// Set replaces the score (0..100).
	Set *int `mapstructure:"set"`
	// Add adjusts the score (may be negative); the result is clamped to 0..100.
	Add *int `mapstructure:"add"`
	// Stop ends rule evaluation after this rule matched.
	Stop bool `mapstructure:"stop"`
}

// MatchConfig lists the criteria of a rule. An empty MatchConfig matches
// every request.
type MatchConfig struct {
	Routes       []string     `mapstructure:"routes"`
	Methods      []string     `mapstructure:"methods"`
	Paths        []string     `mapstructure:"paths"`
	PathPrefixes []string     `mapstructure:"path_prefixes"`
	PathRegex    string       `mapstructure:"path_regex"`
	Headers      []ValueMatch `mapstructure:"headers"`
	Query        []ValueMatch `mapstructure:"query"`
}

// ValueMatch tests one header or query parameter. With Values the value
// must equal one of them (ASCII case-insensitive); with Regex it must match;
// with Present it must merely be non-empty; with Absent it must be missing
// or empty. Exactly one of the four must be given.
type ValueMatch struct {
	Name    string   `mapstructure:"name"`
	Values  []string `mapstructure:"values"`
	Regex   string   `mapstructure:"regex"`
	Present bool     `mapstructure:"present"`
	Absent  bool     `mapstructure:"absent"`
}

// ScopeConfig is the curve and smoothing shared by the global scope and
// each origin scope.
type ScopeConfig struct {
	// DryRun computes decisions and counts would-be sheds but never sheds.
	DryRun bool `mapstructure:"dry_run"`
	// K steepens (k > 1) or flattens (k < 1) the cubic curve.
	K float64 `mapstructure:"k"`
	// Hysteresis is a dead band in score points: a new cutoff is published
	// only when it moved at least this far from the published one (moves to
	// exactly 0 or 100 are always published).
	Hysteresis float64 `mapstructure:"hysteresis"`
	// Smoothing filters every signal before it becomes an overload fraction.
	Smoothing SmoothingConfig `mapstructure:"smoothing"`
	// Controller moves the shedding level the curve turns into a cutoff.
	Controller ControllerConfig `mapstructure:"controller"`
}

// SmoothingConfig is an asymmetric exponentially weighted moving average:
// a signal follows a rise with time constant Rise and a fall with time
// constant Fall. Zero means "follow immediately".
type SmoothingConfig struct {
	Rise time.Duration `mapstructure:"rise"`
	Fall time.Duration `mapstructure:"fall"`
}

// SignalConfig is a threshold/max pair over a signal's value. Below
// Threshold the signal contributes no overload; at or above Max it
// contributes full overload (x = 1).
type SignalConfig struct {
	Enabled   bool    `mapstructure:"enabled"`
	Threshold float64 `mapstructure:"threshold"`
	Max       float64 `mapstructure:"max"`
}

// CPUSignalConfig is the CPU utilisation signal; Threshold and Max are
// fractions of the available CPU (0..1).
type CPUSignalConfig struct {
	Enabled   bool    `mapstructure:"enabled"`
	Threshold float64 `mapstructure:"threshold"`
	Max       float64 `mapstructure:"max"`
	// Source is "auto" (cgroup when the cgroup has a CPU quota, else the
	// process), "process" (this process's user+system time) or "cgroup"
	// (cgroup v2 cpu.stat usage against cpu.max).
	Source string `mapstructure:"source"`
	// SampleEvery is how often CPU time is read; utilisation is averaged
	// over this period.
	SampleEvery time.Duration `mapstructure:"sample_every"`
}

// SchedLatencySignalConfig is the goroutine scheduling-latency signal (see
// schedlatency.go): the Quantile of the time runnable goroutines waited for a CPU over each
// SampleEvery period, against Threshold (no overload) and Max (full overload).
type SchedLatencySignalConfig struct {
	Enabled   bool          `mapstructure:"enabled"`
	Threshold time.Duration `mapstructure:"threshold"`
	Max       time.Duration `mapstructure:"max"`
	// Quantile of the period's waits, 0.5..0.9999.
	Quantile float64 `mapstructure:"quantile"`
	// SampleEvery is the period the quantile is taken over.
	SampleEvery time.Duration `mapstructure:"sample_every"`
	// MinSamples is the fewest goroutine wake-ups in a period for it to count; an idle
	// gateway reads 0.
	MinSamples int `mapstructure:"min_samples"`
	// MinCutoff is the former place of GlobalConfig.MinCutoff (global.min_cutoff), still
	// read when that is not given. It bounds the starvation controller whichever of its
	// signals drives it, this one or cpu, and whether or not this one is enabled.
	MinCutoff *float64 `mapstructure:"min_cutoff"`
}

// GlobalSignals are the gateway-wide overload signals.
type GlobalSignals struct {
	Inflight     SignalConfig             `mapstructure:"inflight"`
	Connections  SignalConfig             `mapstructure:"connections"`
	CPU          CPUSignalConfig          `mapstructure:"cpu"`
	SchedLatency SchedLatencySignalConfig `mapstructure:"sched_latency"`
}

// GlobalConfig configures the global scope.
type GlobalConfig struct {
	ScopeConfig `mapstructure:",squash"`
	// MinCutoff is the lowest cutoff the starvation controller (the cpu and sched_latency
	// signals) can set: scores at or below it are never shed because of them, whichever
	// of the two drives it. Waits caused by neighbours on the machine do not shrink when
	// the gateway sheds, and the CPU a refusal still costs can keep a gateway saturated
	// whatever it refuses, so neither must walk the cutoff into critical traffic (see
	// starvation.go). nil: signals.sched_latency.min_cutoff if given (its former place),
	// else DefaultMinCutoff. Read it through StarvationFloor.
	MinCutoff *float64      `mapstructure:"min_cutoff"`
	Signals   GlobalSignals `mapstructure:"signals"`
	// StarvedRefusals shapes the answer to a request the global scope refuses while the
	// gateway's own work is what starves its CPU (see refusal.go).
	StarvedRefusals StarvedRefusalConfig `mapstructure:"starved_refusals"`
}

// StarvedRefusalConfig: while the starvation controller sheds because of the gateway's own
// work (its CPU at the cpu threshold or its run queue long), a refusal still costs about
// half a proxied request, and a client that is refused at once sends its next request at
// once. Delay holds the refusal's answer (at most MaxDelayed at once; beyond, answered at
// once), so a client with a bounded number of connections sends fewer requests the gateway
// must read and refuse; Close closes the client's connection after the answer.
type StarvedRefusalConfig struct {
	Delay      time.Duration `mapstructure:"delay"`
	MaxDelayed int           `mapstructure:"max_delayed"`
	Close      bool          `mapstructure:"close"`
}

// DefaultMinCutoff is global.min_cutoff when neither it nor its former key is given.
const DefaultMinCutoff = 50.0

// StarvationFloor is the lowest cutoff the starvation controller may set: global.min_cutoff,
// else signals.sched_latency.min_cutoff, else DefaultMinCutoff. It does not depend on which
// starvation signals are enabled: with sched_latency off (the built-in default) the cpu
// signal alone must not cut deeper than with both on.
func (g *GlobalConfig) StarvationFloor() float64 {
	switch {
	case g.MinCutoff != nil:
		return *g.MinCutoff
	case g.Signals.SchedLatency.MinCutoff != nil:
		return *g.Signals.SchedLatency.MinCutoff
	}
	return DefaultMinCutoff
}

// ErrorRateSignalConfig is the fraction of failed requests (0..1) over a
// sliding window of Buckets time buckets spanning Window.
type ErrorRateSignalConfig struct {
	Enabled   bool          `mapstructure:"enabled"`
	Threshold float64       `mapstructure:"threshold"`
	Max       float64       `mapstructure:"max"`
	Window    time.Duration `mapstructure:"window"`
	Buckets   int           `mapstructure:"buckets"`
	// MinRequests is the fewest completions in the window for the error rate
	// to count at all; below it the signal reads 0, so one failure out of
	// two requests does not shed anything.
	MinRequests int `mapstructure:"min_requests"`
}

// LatencySignalConfig compares the mean latency over the error-rate window
// with a target: Threshold is the target, Max the latency at which the
// origin counts as fully overloaded.
type LatencySignalConfig struct {
	Enabled   bool          `mapstructure:"enabled"`
	Threshold time.Duration `mapstructure:"threshold"`
	Max       time.Duration `mapstructure:"max"`
	// MinSamples is the fewest answers in the window for the latency to
	// count; below it the signal reads 0.
	MinSamples int `mapstructure:"min_samples"`
}

// OriginSignals are the per-origin overload signals.
type OriginSignals struct {
	// Concurrency is the origin's attempts awaiting headers divided by its
	// learned (adaptive) limit, or its in-flight attempts divided by 90 %
	// of the connection pool / max_concurrency cap, whichever is larger:
	// 1.0 means "at the limit". Needs no per-origin tuning.
	Concurrency SignalConfig          `mapstructure:"concurrency"`
	Inflight    SignalConfig          `mapstructure:"inflight"`
	ErrorRate   ErrorRateSignalConfig `mapstructure:"error_rate"`
	Latency     LatencySignalConfig   `mapstructure:"latency"`
}

// OriginConfig configures one origin scope.
type OriginConfig struct {
	ScopeConfig `mapstructure:",squash"`
	Signals     OriginSignals `mapstructure:"signals"`
	// Queue enforces the origin's learned limit by priority.
	Queue QueueConfig `mapstructure:"queue"`
}

// QueueConfig: with the origin's learned limit of requests awaiting
// headers reached, a request waits up to MaxWait in a queue of at most
// Length x limit entries ordered by score (most critical first); the least
// critical is refused when the queue is full, and a request that waited
// MaxWait is refused (shed, 503). Score 0 never waits.
type QueueConfig struct {
	Enabled bool          `mapstructure:"enabled"`
	MaxWait time.Duration `mapstructure:"max_wait"`
	Length  float64       `mapstructure:"length"`
}

// ChaosConfig sheds a chosen score range on purpose. A request whose score
// lies in [MinScore, MaxScore] is shed when a random draw falls under
// Fraction, or when it carries Header (equal to HeaderValue if that is set)
// from a client inside TrustedCIDRs or with a verified TLS client
// certificate carrying one of TrustedIdentities.
type ChaosConfig struct {
	Enabled           bool     `mapstructure:"enabled"`
	MinScore          int      `mapstructure:"min_score"`
	MaxScore          int      `mapstructure:"max_score"`
	Fraction          float64  `mapstructure:"fraction"`
	Header            string   `mapstructure:"header"`
	HeaderValue       string   `mapstructure:"header_value"`
	TrustedCIDRs      []string `mapstructure:"trusted_cidrs"`
	TrustedIdentities []string `mapstructure:"trusted_identities"`
	// Experiments are chaos experiments with an experiment and a control
	// group (see ExperimentConfig); independent of Enabled, which switches
	// the random fraction and the header above.
	Experiments []ExperimentConfig `mapstructure:"experiments"`
}

// RetryAfterConfig: a shed response advertises Base plus a uniformly random
// share of Jitter, rounded up to whole seconds (at least 1), so clients
// that were shed together do not return together.
type RetryAfterConfig struct {
	Base   time.Duration `mapstructure:"base"`
	Jitter time.Duration `mapstructure:"jitter"`
}

// Default returns a configuration that runs safely on a fresh checkout:
// every scope live (not dry-run), k = 1, no rules (every request scores
// DefaultScore), chaos off.
func Default() Config {
	scope := ScopeConfig{
		K:          1,
		Hysteresis: 0,
		Controller: ControllerConfig{Mode: ModeHold, Raise: 3 * time.Second, Release: 5 * time.Second, Damping: 0.2},
	}
	// The CPU signal is an average over sample_every: the level rises over
	// 3 s, much slower than that period, so one busy sample cannot shed
	// everything; at an origin the queue absorbs the onset meanwhile.
	global := scope
	return Config{
		Interval: 10 * time.Millisecond,
		Scoring: ScoringConfig{
			DefaultScore:   50,
			PriorityHeader: PriorityHeaderConfig{Name: "X-Floodgate-Priority"},
		},
		Global: GlobalConfig{
			ScopeConfig:     global,
			StarvedRefusals: StarvedRefusalConfig{MaxDelayed: 4096},
			Signals: GlobalSignals{
				Inflight:    SignalConfig{Enabled: true, Threshold: 2000, Max: 8000},
				Connections: SignalConfig{Enabled: true, Threshold: 20000, Max: 50000},
				CPU: CPUSignalConfig{
					Enabled: true, Threshold: 0.75, Max: 0.98,
					Source: "auto", SampleEvery: 250 * time.Millisecond,
				},
				// Off unless configured: what a healthy wait is depends on the
				// machine (config/example.yaml turns it on).
				SchedLatency: SchedLatencySignalConfig{
					Enabled: false, Threshold: 20 * time.Millisecond, Max: 100 * time.Millisecond,
					Quantile: 0.99, SampleEvery: 250 * time.Millisecond, MinSamples: 100,
				},
			},
		},
		Origin: OriginConfig{
			ScopeConfig: scope,
			Signals: OriginSignals{
				Concurrency: SignalConfig{Enabled: true, Threshold: 1, Max: 2},
				Inflight:    SignalConfig{Enabled: false, Threshold: 200, Max: 1000},
				ErrorRate: ErrorRateSignalConfig{
					Enabled: true, Threshold: 0.05, Max: 0.5,
					Window: 10 * time.Second, Buckets: 10, MinRequests: 20,
				},
				Latency: LatencySignalConfig{
					Enabled: false, Threshold: 500 * time.Millisecond, Max: 3 * time.Second, MinSamples: 20,
				},
			},
			Queue: QueueConfig{Enabled: true, MaxWait: 50 * time.Millisecond, Length: 1},
		},
		Chaos:      ChaosConfig{MinScore: 90, MaxScore: 100, Header: "X-Floodgate-Chaos"},
		RetryAfter: RetryAfterConfig{Base: time.Second, Jitter: 4 * time.Second},
	}
}

// errList gathers validation problems, each prefixed with its field path.
type errList []error

func joinErrs(errs errList) error { return errors.Join(errs...) }

func (l *errList) add(path, format string, args ...any) {
	*l = append(*l, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Validate reports every problem in c, each naming its field path relative
// to Config (e.g. "global.signals.cpu.max: must be greater than threshold").
func (c Config) Validate() error {
	var errs errList
	if c.Interval < time.Millisecond || c.Interval > time.Second {
		errs.add("interval", "must be between 1ms and 1s, got %s", c.Interval)
	}
	c.Scoring.validate("scoring", &errs)
	c.Global.validate("global", &errs)
	c.Origin.validate("origin", &errs)
	names := make([]string, 0, len(c.Origins))
	for name := range c.Origins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" {
			errs.add("origins", "origin name must not be empty")
			continue
		}
		c.OriginConfigFor(name).validate("origins."+name, &errs)
	}
	c.Chaos.validate("chaos", &errs)
	if c.RetryAfter.Base < 0 {
		errs.add("retry_after.base", "must not be negative")
	}
	if c.RetryAfter.Jitter < 0 {
		errs.add("retry_after.jitter", "must not be negative")
	}
	if c.RetryAfter.Base+c.RetryAfter.Jitter > time.Hour {
		errs.add("retry_after", "base + jitter must not exceed 1h")
	}
	return errors.Join(errs...)
}

func validScore(v int) bool { return v >= 0 && v <= 100 }

func (s ScoringConfig) validate(path string, errs *errList) {
	if !validScore(s.DefaultScore) {
		errs.add(path+".default_score", "must be in 0..100, got %d", s.DefaultScore)
	}
	for i, r := range s.Rules {
		r.validate(fmt.Sprintf("%s.rules[%d]", path, i), errs)
	}
	if s.PriorityHeader.Name == "" && (len(s.PriorityHeader.TrustedCIDRs) > 0 || len(s.PriorityHeader.TrustedIdentities) > 0) {
		errs.add(path+".priority_header.name", "must be set when trusted_cidrs or trusted_identities is")
	}
	validateCIDRs(path+".priority_header.trusted_cidrs", s.PriorityHeader.TrustedCIDRs, errs)
	validateIdentities(path+".priority_header.trusted_identities", s.PriorityHeader.TrustedIdentities, errs)
}

func validateCIDRs(path string, cidrs []string, errs *errList) {
	for i, c := range cidrs {
		if _, err := parsePrefix(c); err != nil {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

func validateIdentities(path string, ids []string, errs *errList) {
	trust.ValidateIdentities(path, ids, func(key, msg string) { errs.add(key, "%s", msg) })
}

// parsePrefix accepts a CIDR or a bare address (a /32 or /128), by the
// gateway's one rule (trust.ParsePrefix).
func parsePrefix(s string) (netip.Prefix, error) { return trust.ParsePrefix(s) }

func (r RuleConfig) validate(path string, errs *errList) {
	switch {
	case r.Set == nil && r.Add == nil:
		errs.add(path, "one of set or add is required")
	case r.Set != nil && r.Add != nil:
		errs.add(path, "set and add are mutually exclusive")
	case r.Set != nil && !validScore(*r.Set):
		errs.add(path+".set", "must be in 0..100, got %d", *r.Set)
	case r.Add != nil && (*r.Add < -100 || *r.Add > 100):
		errs.add(path+".add", "must be in -100..100, got %d", *r.Add)
	}
	m := r.Match
	for i, v := range m.Routes {
		if v == "" {
			errs.add(fmt.Sprintf("%s.match.routes[%d]", path, i), "must not be empty")
		}
	}
	for i, v := range m.Methods {
		if v == "" || strings.ContainsAny(v, " \t") {
			errs.add(fmt.Sprintf("%s.match.methods[%d]", path, i), "invalid method %q", v)
		}
	}
	for i, v := range m.Paths {
		if !strings.HasPrefix(v, "/") {
			errs.add(fmt.Sprintf("%s.match.paths[%d]", path, i), "must start with '/', got %q", v)
		}
	}
	for i, v := range m.PathPrefixes {
		if !strings.HasPrefix(v, "/") {
			errs.add(fmt.Sprintf("%s.match.path_prefixes[%d]", path, i), "must start with '/', got %q", v)
		}
	}
	if m.PathRegex != "" {
		if _, err := regexp.Compile(m.PathRegex); err != nil {
			errs.add(path+".match.path_regex", "%v", err)
		}
	}
	for i, v := range m.Headers {
		v.validate(fmt.Sprintf("%s.match.headers[%d]", path, i), errs)
	}
	for i, v := range m.Query {
		v.validate(fmt.Sprintf("%s.match.query[%d]", path, i), errs)
	}
}

func (v ValueMatch) validate(path string, errs *errList) {
	if v.Name == "" {
		errs.add(path+".name", "is required")
	}
	n := 0
	if len(v.Values) > 0 {
		n++
	}
	if v.Regex != "" {
		n++
		if _, err := regexp.Compile(v.Regex); err != nil {
			errs.add(path+".regex", "%v", err)
		}
	}
	if v.Present {
		n++
	}
	if v.Absent {
		n++
	}
	if n != 1 {
		errs.add(path, "exactly one of values, regex, present or absent is required")
	}
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func (s ScopeConfig) validate(path string, errs *errList) {
	if !finite(s.K) || s.K <= 0 || s.K > 100 {
		errs.add(path+".k", "must be in (0, 100], got %v", s.K)
	}
	if !finite(s.Hysteresis) || s.Hysteresis < 0 || s.Hysteresis > 50 {
		errs.add(path+".hysteresis", "must be in 0..50 score points, got %v", s.Hysteresis)
	}
	if s.Smoothing.Rise < 0 || s.Smoothing.Rise > time.Minute {
		errs.add(path+".smoothing.rise", "must be in 0..1m, got %s", s.Smoothing.Rise)
	}
	if s.Smoothing.Fall < 0 || s.Smoothing.Fall > 10*time.Minute {
		errs.add(path+".smoothing.fall", "must be in 0..10m, got %s", s.Smoothing.Fall)
	}
	switch s.Controller.Mode {
	case "", ModeHold, ModeProportional: // "" is hold
	default:
		errs.add(path+".controller.mode", "must be %s or %s, got %q", ModeHold, ModeProportional, s.Controller.Mode)
	}
	if s.Controller.Raise < 0 || s.Controller.Raise > time.Minute {
		errs.add(path+".controller.raise", "must be in 0..1m, got %s", s.Controller.Raise)
	}
	if s.Controller.Release < 0 || s.Controller.Release > 10*time.Minute {
		errs.add(path+".controller.release", "must be in 0..10m, got %s", s.Controller.Release)
	}
	if !finite(s.Controller.Damping) || s.Controller.Damping < 0 || s.Controller.Damping > 10 {
		errs.add(path+".controller.damping", "must be in 0..10, got %v", s.Controller.Damping)
	}
}

func (s SignalConfig) validate(path string, errs *errList) {
	validateRange(path, s.Enabled, s.Threshold, s.Max, math.Inf(1), errs)
}

// validateRange checks a threshold/max pair; limit bounds max (use +Inf for
// unbounded counts, 1 for fractions).
func validateRange(path string, enabled bool, threshold, max, limit float64, errs *errList) {
	if !enabled {
		return
	}
	if !finite(threshold) || threshold < 0 {
		errs.add(path+".threshold", "must be a non-negative number, got %v", threshold)
	}
	if !finite(max) || max > limit {
		errs.add(path+".max", "must be at most %v, got %v", limit, max)
	} else if max <= threshold {
		errs.add(path+".max", "must be greater than threshold (%v), got %v", threshold, max)
	}
}

func (g GlobalConfig) validate(path string, errs *errList) {
	g.ScopeConfig.validate(path, errs)
	sp := path + ".signals"
	g.Signals.Inflight.validate(sp+".inflight", errs)
	g.Signals.Connections.validate(sp+".connections", errs)
	cpu := g.Signals.CPU
	validateRange(sp+".cpu", cpu.Enabled, cpu.Threshold, cpu.Max, 1, errs)
	if cpu.Enabled {
		switch cpu.Source {
		case "auto", "process", "cgroup":
		default:
			errs.add(sp+".cpu.source", "must be auto, process or cgroup, got %q", cpu.Source)
		}
		if cpu.SampleEvery < 10*time.Millisecond || cpu.SampleEvery > time.Minute {
			errs.add(sp+".cpu.sample_every", "must be between 10ms and 1m, got %s", cpu.SampleEvery)
		}
	}
	g.Signals.SchedLatency.validate(sp+".sched_latency", errs)
	// The floor is checked whether or not sched_latency is enabled: it bounds cpu too.
	validCutoff := func(key string, v *float64) {
		if v != nil && !(*v >= 0 && *v <= 100) {
			errs.add(key, "must be between 0 and 100, got %v", *v)
		}
	}
	validCutoff(path+".min_cutoff", g.MinCutoff)
	if r := g.StarvedRefusals; r.Delay < 0 || r.Delay > 5*time.Second {
		errs.add(path+".starved_refusals.delay", "must be in 0..5s, got %s", r.Delay)
	}
	if r := g.StarvedRefusals; r.MaxDelayed < 0 || r.MaxDelayed > 1_000_000 {
		errs.add(path+".starved_refusals.max_delayed", "must be in 0..1000000, got %d", r.MaxDelayed)
	}
	old := g.Signals.SchedLatency.MinCutoff
	validCutoff(sp+".sched_latency.min_cutoff", old)
	if g.MinCutoff != nil && old != nil && *g.MinCutoff != *old {
		errs.add(path+".min_cutoff", "is %v but %s.sched_latency.min_cutoff (its former place) is %v: give one", *g.MinCutoff, sp, *old)
	}
}

func (c SchedLatencySignalConfig) validate(path string, errs *errList) {
	if !c.Enabled {
		return
	}
	if c.Threshold <= 0 {
		errs.add(path+".threshold", "must be positive, got %s", c.Threshold)
	}
	if c.Max <= c.Threshold {
		errs.add(path+".max", "must be greater than threshold (%s), got %s", c.Threshold, c.Max)
	}
	if !(c.Quantile >= 0.5 && c.Quantile <= 0.9999) {
		errs.add(path+".quantile", "must be between 0.5 and 0.9999, got %v", c.Quantile)
	}
	if c.SampleEvery < 10*time.Millisecond || c.SampleEvery > time.Minute {
		errs.add(path+".sample_every", "must be between 10ms and 1m, got %s", c.SampleEvery)
	}
	if c.MinSamples < 0 {
		errs.add(path+".min_samples", "must not be negative, got %d", c.MinSamples)
	}
}

func (o OriginConfig) validate(path string, errs *errList) {
	o.ScopeConfig.validate(path, errs)
	sp := path + ".signals"
	o.Signals.Concurrency.validate(sp+".concurrency", errs)
	o.Signals.Inflight.validate(sp+".inflight", errs)
	er := o.Signals.ErrorRate
	validateRange(sp+".error_rate", er.Enabled, er.Threshold, er.Max, 1, errs)
	if er.Enabled || o.Signals.Latency.Enabled {
		// The latency signal shares the error-rate window.
		if er.Window < 100*time.Millisecond || er.Window > 10*time.Minute {
			errs.add(sp+".error_rate.window", "must be between 100ms and 10m, got %s", er.Window)
		}
		if er.Buckets < 1 || er.Buckets > maxBuckets {
			errs.add(sp+".error_rate.buckets", "must be between 1 and %d, got %d", maxBuckets, er.Buckets)
		}
		if er.MinRequests < 0 {
			errs.add(sp+".error_rate.min_requests", "must not be negative, got %d", er.MinRequests)
		}
	}
	if q := o.Queue; q.Enabled {
		if q.MaxWait < 0 || q.MaxWait > time.Minute {
			errs.add(path+".queue.max_wait", "must be in 0..1m, got %s", q.MaxWait)
		}
		if !finite(q.Length) || q.Length < 0 || q.Length > 100 {
			errs.add(path+".queue.length", "must be in 0..100 (times the limit), got %v", q.Length)
		}
	}
	lat := o.Signals.Latency
	if lat.Enabled && lat.MinSamples < 0 {
		errs.add(sp+".latency.min_samples", "must not be negative, got %d", lat.MinSamples)
	}
	validateRange(sp+".latency", lat.Enabled, float64(lat.Threshold), float64(lat.Max), math.Inf(1), errs)
}

func (c ChaosConfig) validate(path string, errs *errList) {
	validateExperiments(path+".experiments", c.Experiments, errs)
	if !c.Enabled {
		return
	}
	if c.MinScore < 1 || c.MinScore > 100 {
		// Score 0 (health checks) is never shed, not even on purpose.
		errs.add(path+".min_score", "must be in 1..100, got %d", c.MinScore)
	}
	if !validScore(c.MaxScore) {
		errs.add(path+".max_score", "must be in 0..100, got %d", c.MaxScore)
	} else if c.MaxScore < c.MinScore {
		errs.add(path+".max_score", "must not be below min_score (%d), got %d", c.MinScore, c.MaxScore)
	}
	if !finite(c.Fraction) || c.Fraction < 0 || c.Fraction > 1 {
		errs.add(path+".fraction", "must be in 0..1, got %v", c.Fraction)
	}
	if c.Fraction == 0 && c.Header == "" {
		errs.add(path, "enabled but neither fraction nor header is set")
	}
	// With no trusted CIDRs nobody may trigger the header variant, which is
	// fine when a fraction drives the experiment; it is a mistake only when
	// the header is the experiment's sole trigger.
	if c.Fraction == 0 && c.Header != "" && len(c.TrustedCIDRs) == 0 && len(c.TrustedIdentities) == 0 {
		errs.add(path+".trusted_cidrs", "required when the header is the only trigger (the header is honoured only from trusted clients; trusted_identities count too)")
	}
	validateCIDRs(path+".trusted_cidrs", c.TrustedCIDRs, errs)
	validateIdentities(path+".trusted_identities", c.TrustedIdentities, errs)
}

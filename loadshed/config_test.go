package loadshed

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesFieldPaths(t *testing.T) {
	cfg := Default()
	cfg.Interval = 0
	cfg.Scoring.DefaultScore = 101
	cfg.Scoring.PriorityHeader.TrustedCIDRs = []string{"10.0.0.0/8", "nonsense/99"}
	cfg.Scoring.Rules = []RuleConfig{
		{Match: MatchConfig{PathRegex: "("}, Set: intp(1)},
		{Set: intp(1), Add: intp(2)},
		{},
		{Match: MatchConfig{Paths: []string{"logs"}, Headers: []ValueMatch{{Name: "X", Present: true, Values: []string{"a"}}}}, Set: intp(200)},
	}
	cfg.Global.K = 0
	cfg.Global.Signals.CPU.Max = 0.5
	cfg.Global.Signals.CPU.Threshold = 0.6
	cfg.Global.Signals.CPU.Source = "gpu"
	cfg.Global.Signals.Inflight.Max = 10
	cfg.Global.Signals.Inflight.Threshold = 10
	cfg.Origin.Signals.ErrorRate.Max = 2
	cfg.Origin.Signals.ErrorRate.Buckets = 0
	zero := 0.0
	cfg.Origins = map[string]OriginOverride{"api": {K: &zero}}
	cfg.Chaos = ChaosConfig{Enabled: true, MinScore: 0, MaxScore: 100, Header: "X-Chaos"}
	cfg.RetryAfter.Base = -time.Second

	err := cfg.Validate()
	if err == nil {
		t.Fatal("expected errors")
	}
	want := []string{
		"interval: must be between 1ms and 1s",
		"scoring.default_score: must be in 0..100, got 101",
		"scoring.priority_header.trusted_cidrs[1]: invalid CIDR \"nonsense/99\"",
		"scoring.rules[0].match.path_regex: error parsing regexp",
		"scoring.rules[1]: set and add are mutually exclusive",
		"scoring.rules[2]: one of set or add is required",
		"scoring.rules[3].set: must be in 0..100, got 200",
		"scoring.rules[3].match.paths[0]: must start with '/'",
		"scoring.rules[3].match.headers[0]: exactly one of values, regex, present or absent is required",
		"global.k: must be in (0, 100], got 0",
		"global.signals.cpu.max: must be greater than threshold (0.6), got 0.5",
		"global.signals.cpu.source: must be auto, process or cgroup, got \"gpu\"",
		"global.signals.inflight.max: must be greater than threshold (10), got 10",
		"origin.signals.error_rate.max: must be at most 1, got 2",
		"origin.signals.error_rate.buckets: must be between 1 and 600, got 0",
		"origins.api.k: must be in (0, 100], got 0",
		"chaos.min_score: must be in 1..100, got 0",
		"chaos.trusted_cidrs: required when the header is the only trigger",
		"retry_after.base: must not be negative",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
}

func TestValidateDisabledSignalsSkipRanges(t *testing.T) {
	cfg := Default()
	cfg.Global.Signals.CPU = CPUSignalConfig{}
	cfg.Origin.Signals = OriginSignals{}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("disabled signals need no thresholds: %v", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	cfg := Default()
	cfg.Global.K = -1
	if s, err := New(cfg); err == nil {
		s.Close()
		t.Fatal("New accepted k = -1")
	}
}

// A fraction-driven experiment needs no trusted CIDRs: the header variant
// is then simply unavailable (nobody is trusted), as with the priority
// header.
func TestChaosFractionOnlyNeedsNoTrustedCIDRs(t *testing.T) {
	cfg := Default()
	cfg.Chaos.Enabled = true
	cfg.Chaos.Fraction = 0.01
	if err := cfg.Validate(); err != nil {
		t.Fatalf("fraction-only chaos with the default header: %v", err)
	}
}

// global.min_cutoff is the floor of the starvation controller; its former key
// (signals.sched_latency.min_cutoff) still works, even with sched_latency off, and
// the two may not disagree. Errors name the key.
func TestGlobalMinCutoffKeys(t *testing.T) {
	decode := func(t *testing.T, doc string) (Config, error) {
		t.Helper()
		v := viper.New()
		v.SetConfigType("yaml")
		if err := v.ReadConfig(strings.NewReader(doc)); err != nil {
			t.Fatal(err)
		}
		cfg := Default()
		if err := v.Unmarshal(&cfg); err != nil {
			t.Fatal(err)
		}
		return cfg, cfg.Validate()
	}
	for _, tc := range []struct {
		name, doc string
		floor     float64
		err       []string
	}{
		{"default", "interval: 10ms", DefaultMinCutoff, nil},
		{"new key", "global: {min_cutoff: 30}", 30, nil},
		{"new key zero", "global: {min_cutoff: 0}", 0, nil},
		{"former key, signal off", "global: {signals: {sched_latency: {min_cutoff: 40}}}", 40, nil},
		{"both agree", "global: {min_cutoff: 40, signals: {sched_latency: {enabled: true, min_cutoff: 40}}}", 40, nil},
		{"both disagree", "global: {min_cutoff: 30, signals: {sched_latency: {min_cutoff: 40}}}", 0,
			[]string{"global.min_cutoff: is 30 but global.signals.sched_latency.min_cutoff (its former place) is 40"}},
		{"out of range", "global: {min_cutoff: 120}", 0, []string{"global.min_cutoff: must be between 0 and 100, got 120"}},
		{"former out of range", "global: {signals: {sched_latency: {min_cutoff: -1}}}", 0,
			[]string{"global.signals.sched_latency.min_cutoff: must be between 0 and 100, got -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := decode(t, tc.doc)
			if tc.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.Global.StarvationFloor(); got != tc.floor {
					t.Fatalf("floor %v, want %v", got, tc.floor)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in %v", w, err)
				}
			}
		})
	}
}

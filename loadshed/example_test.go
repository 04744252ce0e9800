package loadshed

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"
)

// loadExample decodes the example taxonomy the way the gateway's viper
// loader will: onto Default(), with viper's default decode hooks.
func loadExample(t *testing.T) Config {
	t.Helper()
	f, err := os.Open("example-taxonomy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(f); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	if err := v.Unmarshal(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestExampleTaxonomyBands(t *testing.T) {
	cfg := loadExample(t)
	if cfg.Global.Controller.Raise.Seconds() != 3 || cfg.Origin.Signals.Latency.Max.Seconds() != 3 || !cfg.Origin.Signals.Concurrency.Enabled || !cfg.Global.Signals.CPU.Enabled {
		t.Fatalf("durations or nested keys not decoded: %+v", cfg.Global)
	}
	s := mustScorer(t, cfg.Scoring)
	type kv = map[string]string
	cases := []struct {
		method, path string
		headers      kv
		query        kv
		lo, hi       int
	}{
		{"GET", "/healthz", kv{"X-Request-Kind": "prefetch"}, nil, 0, 0},
		{"POST", "/logs/batch", nil, nil, 90, 100},
		{"POST", "/telemetry", kv{"X-Request-Kind": "user"}, nil, 90, 100},
		{"GET", "/prefetch/home", nil, nil, 80, 89},
		{"GET", "/api/v1/play/123", kv{"X-Request-Kind": "background"}, nil, 80, 89},
		{"GET", "/api/artwork/1", nil, kv{"prefetch": "1"}, 80, 89},
		{"GET", "/api/ratings/7", nil, nil, 60, 79},
		{"GET", "/api/ratings/7", kv{"X-Request-Kind": "user"}, nil, 60, 79},
		{"GET", "/api/recommendations", nil, nil, 40, 59},
		{"GET", "/api/recommendations", kv{"X-Request-Kind": "user"}, nil, 40, 59},
		{"GET", "/api/v2/license", kv{"X-Request-Kind": "user"}, nil, 10, 39},
		{"GET", "/api/v1/play/123", nil, nil, 10, 39},
		{"POST", "/api/login", kv{"X-Request-Kind": "user"}, nil, 10, 39},
		{"GET", "/api/login", nil, nil, 40, 59}, // only POST is the critical login
		{"GET", "/something/else", nil, nil, 50, 50},
	}
	for _, c := range cases {
		r := req(c.method, c.path)
		for k, v := range c.headers {
			r.headers[k] = v
		}
		for k, v := range c.query {
			r.query[k] = v
		}
		if got := s.Score(r); got < c.lo || got > c.hi {
			t.Errorf("%s %s %v %v: score %d, want %d..%d", c.method, c.path, c.headers, c.query, got, c.lo, c.hi)
		}
	}
	// The trusted priority header from the example CIDRs.
	r := req("GET", "/logs")
	r.headers["X-Floodgate-Priority"] = "3"
	r.ip = netip.MustParseAddr("127.0.0.1")
	if got := s.Score(r); got != 3 {
		t.Fatalf("trusted priority header: %d", got)
	}
}

// The squashed ScopeConfig keys sit directly under global/origin.
func TestViperDecodesScopeKeys(t *testing.T) {
	v := viper.New()
	v.SetConfigType("yaml")
	doc := `
global: {k: 2, dry_run: true, hysteresis: 5, smoothing: {rise: 250ms, fall: 4s}}
origins:
  api:
    k: 0.5
    signals:
      inflight: {enabled: true, threshold: 5, max: 10}
      error_rate: {enabled: false}
      latency: {max: 5s}
`
	if err := v.ReadConfig(strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	if err := v.Unmarshal(&cfg); err != nil {
		t.Fatal(err)
	}
	g := cfg.Global
	if g.K != 2 || !g.DryRun || g.Hysteresis != 5 || g.Smoothing.Rise != 250*time.Millisecond || g.Smoothing.Fall != 4*time.Second {
		t.Fatalf("global scope keys not decoded: %+v", g.ScopeConfig)
	}
	if g.Signals.Inflight.Max != 8000 {
		t.Fatal("defaults lost for keys absent from YAML")
	}
	api := cfg.OriginConfigFor("api")
	if api.K != 0.5 || api.Signals.Inflight.Max != 10 || api.Signals.ErrorRate.Enabled {
		t.Fatalf("origins.api: %+v", api)
	}
	// Keys not given inherit from origin.
	if api.Signals.Latency.Enabled || api.Signals.Latency.Max != 5*time.Second || api.Signals.Latency.Threshold != 500*time.Millisecond ||
		api.Hysteresis != 0 || api.Controller != Default().Origin.Controller || !api.Signals.Concurrency.Enabled {
		t.Fatalf("origins.api did not inherit: %+v", api)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := Default()
	tooLow := 0.5
	bad.Origins = map[string]OriginOverride{"api": {Signals: OriginSignalsOverride{ErrorRate: ErrorRateOverride{Max: &tooLow, Threshold: &tooLow}}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "origins.api.signals.error_rate.max: must be greater than threshold") {
		t.Fatalf("override validation: %v", err)
	}
}

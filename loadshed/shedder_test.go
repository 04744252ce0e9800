package loadshed

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock drives a manual-tick Shedder.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func (c *testClock) advance(s *Shedder, d time.Duration) {
	c.t = c.t.Add(d)
	s.tick(c.t)
}

type fakeCPU struct {
	mu    sync.Mutex
	used  time.Duration
	cores float64
}

func (f *fakeCPU) Name() string { return "fake" }

func (f *fakeCPU) CPUTime() (time.Duration, float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used, f.cores, nil
}

func (f *fakeCPU) add(d time.Duration) {
	f.mu.Lock()
	f.used += d
	f.mu.Unlock()
}

// crispConfig has one live global signal (inflight 100..200) and no
// smoothing or hysteresis, so cutoffs follow the curve exactly.
func crispConfig() Config {
	cfg := Default()
	cfg.Global.Smoothing = SmoothingConfig{}
	cfg.Global.Hysteresis = 0
	cfg.Global.Signals = GlobalSignals{Inflight: SignalConfig{Enabled: true, Threshold: 100, Max: 200}}
	cfg.Origin.Smoothing = SmoothingConfig{}
	cfg.Origin.Hysteresis = 0
	cfg.Global.Controller.Mode = ModeProportional
	cfg.Origin.Controller.Mode = ModeProportional
	return cfg
}

func newTestShedder(t *testing.T, cfg Config, opts ...Option) (*Shedder, *testClock) {
	t.Helper()
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	opts = append([]Option{withManualTicks(clk.now), WithCPUSource(&fakeCPU{cores: 1}), WithRunQueueSource(func() float64 { return 0 })}, opts...)
	s, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

func begin(g *Global, n int) {
	for range n {
		g.Begin()
	}
}

func TestGlobalShedsAlongCurve(t *testing.T) {
	s, clk := newTestShedder(t, crispConfig())
	g := s.Global()
	if d := g.Decide(100); d.Shed || d.Cutoff != 100 {
		t.Fatalf("idle: %+v", d)
	}
	begin(g, 180) // x = 0.8
	clk.advance(s, 100*time.Millisecond)
	d := g.Decide(49)
	if !d.Shed || d.Scope != ScopeGlobal || math.Abs(d.Cutoff-48.8) > 1e-9 || d.Overload != 0.8 {
		t.Fatalf("score 49 at x=0.8: %+v", d)
	}
	if d.RetryAfter < 1 || d.RetryAfter > 5 {
		t.Fatalf("RetryAfter = %d, want 1..5 (base 1s + jitter 4s)", d.RetryAfter)
	}
	if got := d.HeaderValue(); got != "global; cutoff=48; score=49" {
		t.Fatalf("header = %q", got)
	}
	if d := g.Decide(48); d.Shed || d.WouldShed {
		t.Fatalf("score 48 at cutoff 48.8 must pass: %+v", d)
	}
	begin(g, 100) // x = 1: cutoff 0, still never score 0
	clk.advance(s, 100*time.Millisecond)
	if d := g.Decide(0); d.Shed {
		t.Fatalf("score 0 shed: %+v", d)
	}
	if d := g.Decide(1); !d.Shed {
		t.Fatalf("score 1 at x=1 must be shed: %+v", d)
	}
	snap := s.Snapshot()
	if snap.Global.Shed[Band(49)] != 1 || snap.Global.Shed[Band(1)] != 1 || snap.Global.Shed.Total() != 2 {
		t.Fatalf("shed counts %v", snap.Global.Shed)
	}
	if snap.Global.Inflight != 280 || snap.Global.Cutoff != 0 {
		t.Fatalf("snapshot %+v", snap.Global)
	}
}

func TestDryRunCountsWithoutShedding(t *testing.T) {
	cfg := crispConfig()
	cfg.Global.DryRun = true
	s, clk := newTestShedder(t, cfg)
	begin(s.Global(), 180)
	clk.advance(s, 100*time.Millisecond)
	for score := 0; score <= 100; score++ {
		d := s.DecideGlobal(req("GET", "/"), score)
		if d.Shed {
			t.Fatalf("dry-run shed score %d", score)
		}
		if d.WouldShed != (score >= 49) {
			t.Fatalf("score %d: WouldShed = %v", score, d.WouldShed)
		}
	}
	snap := s.Snapshot()
	if snap.Global.Shed.Total() != 0 {
		t.Fatalf("shed counted in dry-run: %v", snap.Global.Shed)
	}
	// Scores 49..100: 49 in band 40-49, 50-89 in four bands of ten, 90-100 (11).
	want := BandCounts{5: 1, 6: 10, 7: 10, 8: 10, 9: 10, 10: 11}
	if snap.Global.WouldShed != want || !snap.Global.DryRun {
		t.Fatalf("would-shed = %v (dry %v), want %v", snap.Global.WouldShed, snap.Global.DryRun, want)
	}
}

// With the default controller, overload rising step by step must never
// lower shedding: the cutoff only falls, and at full overload everything
// but score 0 goes.
func TestRisingOverloadNeverReadmits(t *testing.T) {
	cfg := crispConfig()
	cfg.Global.ScopeConfig = Default().Global.ScopeConfig
	s, clk := newTestShedder(t, cfg)
	g := s.Global()
	prev := 100.0
	for v := int64(90); v <= 210; v += 3 {
		g.inflight.Store(v)
		for range 7 {
			clk.advance(s, 100*time.Millisecond)
			if c := g.Decide(0).Cutoff; c > prev {
				t.Fatalf("inflight %d: cutoff rose from %v to %v", v, prev, c)
			} else {
				prev = c
			}
		}
	}
	if !g.Decide(1).Shed || g.Decide(0).Shed {
		t.Fatalf("at full overload score 1 should be shed and 0 never (cutoff %v)", prev)
	}
}

func TestOverloadRecoveryReachesFullAdmission(t *testing.T) {
	cfg := crispConfig()
	cfg.Global.ScopeConfig = Default().Global.ScopeConfig
	s, clk := newTestShedder(t, cfg)
	g := s.Global()
	g.inflight.Store(190)
	for range 50 {
		clk.advance(s, 100*time.Millisecond)
	}
	if g.Decide(0).Cutoff > 40 {
		t.Fatalf("cutoff %.1f did not follow overload", g.Decide(0).Cutoff)
	}
	g.inflight.Store(0)
	for range 100 {
		clk.advance(s, 100*time.Millisecond)
	}
	// Hysteresis must not strand the cutoff just below 100.
	if c := g.Decide(0).Cutoff; c != 100 {
		t.Fatalf("cutoff %.3f after 10 s idle, want 100", c)
	}
}

func TestChaosFraction(t *testing.T) {
	cfg := Default()
	cfg.Chaos = ChaosConfig{Enabled: true, MinScore: 80, MaxScore: 100, Fraction: 0.25}
	rng := rand.New(rand.NewPCG(7, 9))
	s, _ := newTestShedder(t, cfg, WithRand(rng.Float64))
	r := req("GET", "/prefetch")
	const n = 20000
	hits := 0
	for i := range n {
		d := s.DecideGlobal(r, 80+i%21)
		if d.Shed {
			if d.Scope != ScopeChaos || d.HeaderValue() != "chaos; score="+strconv.Itoa(d.Score) {
				t.Fatalf("chaos decision %+v header %q", d, d.HeaderValue())
			}
			hits++
		}
		if d := s.DecideGlobal(r, 79); d.Shed {
			t.Fatal("score 79 is outside the chaos range")
		}
	}
	if frac := float64(hits) / n; math.Abs(frac-0.25) > 0.015 {
		t.Fatalf("chaos shed fraction %.4f, want 0.25 ± 0.015", frac)
	}
	if got := s.Snapshot().Chaos.Total(); got != uint64(hits) {
		t.Fatalf("chaos counter %d, want %d", got, hits)
	}
	if s.Snapshot().Global.Shed.Total() != 0 {
		t.Fatal("chaos sheds must not count as global sheds")
	}
}

func TestChaosHeaderOnlyFromTrustedCIDRs(t *testing.T) {
	cfg := Default()
	cfg.Chaos = ChaosConfig{
		Enabled: true, MinScore: 60, MaxScore: 100,
		Header: "X-Floodgate-Chaos", HeaderValue: "exp-42", TrustedCIDRs: []string{"10.0.0.0/8"},
	}
	s, _ := newTestShedder(t, cfg)
	mk := func(ip, val string) *fakeRequest {
		r := req("GET", "/")
		r.ip = netip.MustParseAddr(ip)
		if val != "" {
			r.headers["X-Floodgate-Chaos"] = val
		}
		return r
	}
	cases := []struct {
		r     *fakeRequest
		score int
		want  bool
	}{
		{mk("10.2.3.4", "exp-42"), 70, true},
		{mk("10.2.3.4", "exp-42"), 59, false}, // outside range
		{mk("10.2.3.4", "exp-41"), 70, false}, // other experiment
		{mk("10.2.3.4", ""), 70, false},
		{mk("198.51.100.1", "exp-42"), 70, false}, // untrusted client
	}
	for i, c := range cases {
		if got := s.DecideGlobal(c.r, c.score).Shed; got != c.want {
			t.Errorf("case %d: shed = %v, want %v", i, got, c.want)
		}
	}
}

// The chaos header is honoured from a verified client certificate naming
// a trusted identity (no trusted CIDRs needed), and from nobody else; the
// header is dropped before forwarding for everyone else.
func TestChaosHeaderFromTrustedIdentities(t *testing.T) {
	cfg := Default()
	cfg.Chaos = ChaosConfig{
		Enabled: true, MinScore: 60, MaxScore: 100,
		Header: "X-Floodgate-Chaos", TrustedIdentities: []string{"spiffe://prod/chaos-runner"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("header-only chaos with trusted identities: %v", err)
	}
	s, _ := newTestShedder(t, cfg)
	mk := func(names ...string) *fakeRequest {
		r := req("GET", "/")
		r.headers["X-Floodgate-Chaos"] = "on"
		r.certNames = names
		return r
	}
	for _, c := range []struct {
		r    *fakeRequest
		want bool
	}{
		{mk("uri:spiffe://prod/chaos-runner"), true},
		{mk("uri:spiffe://prod/web"), false},
		{mk(), false},
	} {
		if got := s.DecideGlobal(c.r, 70).Shed; got != c.want {
			t.Errorf("names %v: shed = %v, want %v", c.r.certNames, got, c.want)
		}
		chaosDropped := false
		s.UntrustedHeaders(c.r.Identity(), func(n string) { chaosDropped = chaosDropped || n == "X-Floodgate-Chaos" })
		if chaosDropped == c.want {
			t.Errorf("names %v: chaos header dropped = %v", c.r.certNames, chaosDropped)
		}
	}
}

func TestOriginErrorRateWindow(t *testing.T) {
	cfg := crispConfig()
	cfg.Origin.Signals = OriginSignals{
		ErrorRate: ErrorRateSignalConfig{Enabled: true, Threshold: 0.1, Max: 0.5, Window: time.Second, Buckets: 10, MinRequests: 10},
	}
	s, clk := newTestShedder(t, cfg)
	api, other := s.Origin("api"), s.Origin("other")
	if s.Origin("api") != api {
		t.Fatal("Origin must return the same throttler for a name")
	}
	for i := range 9 {
		api.Begin()
		api.Done(time.Millisecond, i < 9)
	}
	clk.advance(s, 100*time.Millisecond)
	if d := api.Decide(100); d.Shed {
		t.Fatalf("9 requests are below min_requests: %+v", d)
	}
	for i := range 91 {
		api.Begin()
		api.Done(time.Millisecond, i < 21) // 30 of 100 failed
	}
	clk.advance(s, 100*time.Millisecond)
	d := api.Decide(88)
	if !d.Shed || d.Scope != ScopeOrigin || d.Origin != "api" || math.Abs(d.Cutoff-87.5) > 1e-9 {
		t.Fatalf("error rate 0.3 (x=0.5): %+v", d)
	}
	if got := d.HeaderValue(); got != "origin; name=api; cutoff=87; score=88" {
		t.Fatalf("header %q", got)
	}
	if d := other.Decide(100); d.Shed {
		t.Fatal("a sick origin must not shed another origin's traffic")
	}
	if d := s.Global().Decide(100); d.Shed {
		t.Fatal("a sick origin must not move the global cutoff")
	}
	clk.advance(s, 1100*time.Millisecond) // the window slides past every failure
	if d := api.Decide(100); d.Shed || d.Cutoff != 100 {
		t.Fatalf("window did not slide: %+v", d)
	}
	if n := api.Inflight(); n != 0 {
		t.Fatalf("inflight %d after balanced Begin/Done", n)
	}
}

func TestOriginLatencyAgainstTarget(t *testing.T) {
	cfg := crispConfig()
	cfg.Origin.Signals = OriginSignals{
		Latency:   LatencySignalConfig{Enabled: true, Threshold: 250 * time.Millisecond, Max: 1250 * time.Millisecond, MinSamples: 20},
		ErrorRate: ErrorRateSignalConfig{Window: 2 * time.Second, Buckets: 4},
	}
	s, clk := newTestShedder(t, cfg)
	o := s.Origin("slow")
	for range 20 {
		o.Begin()
		o.Done(time.Second, false)
	}
	clk.advance(s, 100*time.Millisecond)
	// mean 1 s: x = 0.75, cutoff = 100 * (1 - 0.421875)
	if d := o.Decide(0); math.Abs(d.Cutoff-57.8125) > 1e-9 {
		t.Fatalf("cutoff %v, want 57.8125", d.Cutoff)
	}
	lat := signalNamed(t, s.Snapshot().Origins[0], "latency")
	if lat.Value != 1 || lat.Threshold != 0.25 {
		t.Fatalf("latency signal snapshot %+v", lat)
	}
	// Below min_samples answers in the window the latency says nothing:
	// one slow answer (an event stream's headers after a long wait) on a
	// quiet origin sheds nothing.
	quiet := s.Origin("quiet")
	quiet.Begin()
	quiet.Done(30*time.Second, false)
	clk.advance(s, 100*time.Millisecond)
	if d := quiet.Decide(100); d.Cutoff != 100 {
		t.Fatalf("one slow answer moved the cutoff to %v", d.Cutoff)
	}
}

func signalNamed(t *testing.T, sc ScopeSnapshot, name string) SignalSnapshot {
	t.Helper()
	for _, s := range sc.Signals {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("scope %s has no signal %q: %+v", sc.Name, name, sc.Signals)
	return SignalSnapshot{}
}

func TestOriginInflightAndOverrides(t *testing.T) {
	cfg := crispConfig()
	cfg.Origin.Signals = OriginSignals{Inflight: SignalConfig{Enabled: true, Threshold: 10, Max: 20}}
	one, three, yes := 1.0, 3.0, true
	cfg.Origins = map[string]OriginOverride{"small": {
		DryRun:  &yes,
		Signals: OriginSignalsOverride{Inflight: SignalOverride{Threshold: &one, Max: &three}},
	}}
	s, clk := newTestShedder(t, cfg)
	big, sm := s.Origin("big"), s.Origin("small")
	for range 3 {
		big.Begin()
		sm.Begin()
	}
	clk.advance(s, 100*time.Millisecond)
	if d := big.Decide(100); d.Shed || d.Cutoff != 100 {
		t.Fatalf("big origin under threshold: %+v", d)
	}
	if d := sm.Decide(1); d.Shed || !d.WouldShed || d.Cutoff != 0 {
		t.Fatalf("small origin (override, dry-run) at max: %+v", d)
	}
	snap := s.Snapshot()
	if len(snap.Origins) != 2 || snap.Origins[0].Name != "big" || snap.Origins[1].WouldShed.Total() != 1 || snap.Origins[1].Inflight != 3 {
		t.Fatalf("origin snapshots %+v", snap.Origins)
	}
	s.RetainOrigins([]string{"big"})
	if snap := s.Snapshot(); len(snap.Origins) != 1 || snap.Origins[0].Name != "big" {
		t.Fatalf("after RetainOrigins: %+v", snap.Origins)
	}
}

func TestUpdateKeepsSignalStateAndAppliesImmediately(t *testing.T) {
	cfg := crispConfig()
	s, clk := newTestShedder(t, cfg)
	g := s.Global()
	begin(g, 180)
	clk.advance(s, 100*time.Millisecond)
	if d := g.Decide(60); !d.Shed {
		t.Fatalf("k=1 x=0.8: %+v", d)
	}
	o := s.Origin("api")
	o.Begin()

	steep := cfg
	steep.Global.K = 0.5 // cutoff 74.4 at x=0.8
	if err := s.Update(steep); err != nil {
		t.Fatal(err)
	}
	// No tick in between: the new k applies at once.
	if d := g.Decide(60); d.Shed || math.Abs(d.Cutoff-74.4) > 1e-9 {
		t.Fatalf("after k=0.5: %+v", d)
	}
	dry := steep
	dry.Global.DryRun = true
	if err := s.Update(dry); err != nil {
		t.Fatal(err)
	}
	if d := g.Decide(90); d.Shed || !d.WouldShed {
		t.Fatalf("after dry_run: %+v", d)
	}
	bad := dry
	bad.Global.Signals.Inflight.Max = 1
	if err := s.Update(bad); err == nil {
		t.Fatal("Update accepted max < threshold")
	}
	if d := g.Decide(90); !d.WouldShed || s.Config().Global.Signals.Inflight.Max != 200 {
		t.Fatal("a rejected update must leave the running config in place")
	}
	if g.Inflight() != 180 || o.Inflight() != 1 || s.Snapshot().Global.Shed.Total() != 1 {
		t.Fatal("Update lost counters")
	}
	// Rules reload too.
	rules := dry
	rules.Scoring.Rules = []RuleConfig{{Match: MatchConfig{PathPrefixes: []string{"/logs"}}, Set: intp(95)}}
	if err := s.Update(rules); err != nil {
		t.Fatal(err)
	}
	if got := s.Score(req("GET", "/logs/x")); got != 95 {
		t.Fatalf("score after rules reload = %d", got)
	}
}

func TestRetryAfterJitter(t *testing.T) {
	var next atomic.Uint64
	draw := func() float64 { return math.Float64frombits(next.Load()) }
	cfg := crispConfig()
	s, clk := newTestShedder(t, cfg, WithRand(draw))
	begin(s.Global(), 200)
	clk.advance(s, 100*time.Millisecond)
	for _, c := range []struct {
		r    float64
		want int
	}{{0, 1}, {0.5, 3}, {0.99, 5}} {
		next.Store(math.Float64bits(c.r))
		if got := s.Global().Decide(100).RetryAfter; got != c.want {
			t.Errorf("rand %v: Retry-After %d, want %d", c.r, got, c.want)
		}
	}
	zero := cfg
	zero.RetryAfter = RetryAfterConfig{}
	if err := s.Update(zero); err != nil {
		t.Fatal(err)
	}
	if got := s.Global().Decide(100).RetryAfter; got != 1 {
		t.Errorf("zero base and jitter: Retry-After %d, want the minimum 1", got)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	s, clk := newTestShedder(t, crispConfig())
	begin(s.Global(), 180)
	clk.advance(s, 100*time.Millisecond)
	o := s.Origin("api")
	r := req("GET", "/")
	buf := make([]byte, 0, 64)
	n := testing.AllocsPerRun(1000, func() {
		d := s.DecideGlobal(r, 90)
		buf = d.AppendHeader(buf[:0])
		_ = s.DecideGlobal(r, 10)
		_ = s.Origin("api").Decide(90)
		o.Begin()
		o.Done(time.Millisecond, false)
		s.Global().Begin()
		s.Global().End()
	})
	if n != 0 {
		t.Fatalf("request path allocates %v times", n)
	}
}

func TestGlobalCPUSignal(t *testing.T) {
	cfg := crispConfig()
	cfg.Global.Signals.Inflight.Enabled = false
	cfg.Global.Signals.CPU = CPUSignalConfig{Enabled: true, Threshold: 0.5, Max: 0.9, Source: "auto", SampleEvery: time.Second}
	cpu := &fakeCPU{cores: 2}
	s, clk := newTestShedder(t, cfg, WithCPUSource(cpu))
	clk.advance(s, 100*time.Millisecond) // primes the sampler
	for range 10 {
		cpu.add(140 * time.Millisecond) // 1.4 s of CPU per second on 2 cores = 0.7
		clk.advance(s, 100*time.Millisecond)
	}
	snap := s.Snapshot()
	if cpuSig := snap.Global.Signals[2]; cpuSig.Name != "cpu" || math.Abs(cpuSig.Value-0.7) > 1e-9 {
		t.Fatalf("cpu signal %+v", cpuSig)
	}
	if math.Abs(snap.Global.Overload-0.5) > 1e-9 || snap.CPUSource != "fake" || snap.CPUError != "" {
		t.Fatalf("snapshot %+v", snap)
	}
}

// Everything at once under the race detector, with the real ticker.
func TestConcurrentUseWithRealTicker(t *testing.T) {
	cfg := Default()
	cfg.Interval = 2 * time.Millisecond
	cfg.Global.Signals.Inflight = SignalConfig{Enabled: true, Threshold: 2, Max: 8}
	cfg.Global.Signals.CPU.SampleEvery = 10 * time.Millisecond
	s, err := New(cfg, WithCPUSource(&fakeCPU{cores: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	var sawOverload atomic.Bool
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req("GET", "/api/x")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				score := s.Score(r)
				if d := s.DecideGlobal(r, score); d.Shed {
					continue
				}
				s.Global().Begin()
				o := s.Origin([]string{"a", "b"}[(w+i)%2])
				o.Begin()
				o.Done(time.Millisecond, i%7 == 0)
				if i%50 == 0 {
					_ = s.Snapshot()
				}
				if s.Snapshot().Global.Overload > 0 {
					sawOverload.Store(true)
				}
				s.Global().End()
			}
		}()
	}
	// Hold in-flight high until the ticker has observed it, then reload
	// concurrently with the workers.
	begin(s.Global(), 10)
	deadline := time.Now().Add(5 * time.Second)
	for !sawOverload.Load() && time.Now().Before(deadline) {
		if err := s.Update(cfg); err != nil {
			t.Error(err)
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if !sawOverload.Load() {
		t.Fatal("the ticker never published an overload")
	}
	s.Close()
	s.Close() // idempotent
}

func BenchmarkRequestPath(b *testing.B) {
	s, err := New(Default(), withManualTicks(time.Now))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := req("GET", "/api/v1/play")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			score := s.Score(r)
			if d := s.DecideGlobal(r, score); d.Shed {
				continue
			}
			g := s.Global()
			g.Begin()
			o := s.Origin("api")
			if d := o.Decide(score); !d.Shed {
				o.Begin()
				o.Done(time.Millisecond, false)
			}
			g.End()
		}
	})
}

// Load settling just above the threshold gives a target cutoff a hair under
// 100: recovery must publish 100, not stay stuck a few points below and
// keep shedding the lowest priorities.
func TestRecoveryNearThresholdDoesNotStickBelowFull(t *testing.T) {
	cfg := crispConfig()
	cfg.Global.ScopeConfig = Default().Global.ScopeConfig
	cfg.Global.Hysteresis = 3
	cfg.Global.Smoothing = SmoothingConfig{Rise: 500 * time.Millisecond, Fall: 2 * time.Second}
	cfg.Global.Controller.Mode = ModeProportional
	s, clk := newTestShedder(t, cfg)
	g := s.Global()
	g.inflight.Store(130) // x = 0.3 -> cutoff ~97.3
	for range 50 {
		clk.advance(s, 100*time.Millisecond)
	}
	g.inflight.Store(101) // x = 0.01 -> target 99.9999
	for range 600 {
		clk.advance(s, 100*time.Millisecond)
	}
	if d := g.Decide(98); d.Shed || d.Cutoff != 100 {
		t.Fatalf("60 s after load fell to just above the threshold: cutoff %.4f, score 98 shed=%v", d.Cutoff, d.Shed)
	}
}

package shed

import (
	"github.com/floodgate-dev/floodgate/trust"

	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
	"github.com/floodgate-dev/floodgate/loadshed"
)

// Scores the test rules give (see testConfig).
const (
	scoreHealth = 0
	scoreCrit   = 10
	scoreMid    = 50 // the default score
	scoreLow    = 90
)

// clientIPHeader lets a test pose as another client address, standing in
// for the gateway's own client-address logic.
const clientIPHeader = "X-Test-Client-IP"

// testConfig is a shedder with one live signal per scope (in-flight,
// 100..200) and no smoothing, so a test sets the overload exactly by
// counting requests in with Begin: 180 in flight is x = 0.8, cutoff 48.8.
// Hysteresis 3 keeps that cutoff still while one admitted test request
// adds itself to the count.
func testConfig() loadshed.Config {
	set := func(n int) *int { return &n }
	cfg := loadshed.Default()
	cfg.Interval = 5 * time.Millisecond
	// Proportional: the cutoff follows the curve of the in-flight count
	// exactly (the controller has its own tests in loadshed).
	scope := loadshed.ScopeConfig{K: 1, Hysteresis: 3, Controller: loadshed.ControllerConfig{Mode: loadshed.ModeProportional}}
	cfg.Global.ScopeConfig = scope
	cfg.Global.Signals = loadshed.GlobalSignals{Inflight: loadshed.SignalConfig{Enabled: true, Threshold: 100, Max: 200}}
	cfg.Origin.ScopeConfig = scope
	cfg.Origin.Signals = loadshed.OriginSignals{Inflight: loadshed.SignalConfig{Enabled: true, Threshold: 100, Max: 200}}
	cfg.Scoring.Rules = []loadshed.RuleConfig{
		{Name: "health", Match: loadshed.MatchConfig{Paths: []string{"/health"}}, Set: set(scoreHealth), Stop: true},
		{Name: "low", Match: loadshed.MatchConfig{PathPrefixes: []string{"/low"}}, Set: set(scoreLow)},
		{Name: "crit", Match: loadshed.MatchConfig{PathPrefixes: []string{"/crit"}}, Set: set(scoreCrit)},
	}
	cfg.Chaos = loadshed.ChaosConfig{
		Enabled: true, MinScore: 80, MaxScore: 100,
		Header: "X-Floodgate-Chaos", HeaderValue: "exp-1", TrustedCIDRs: []string{"127.0.0.1/32"},
	}
	return cfg
}

func newShedder(t *testing.T, cfg loadshed.Config) *loadshed.Shedder {
	t.Helper()
	sh, err := loadshed.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sh.Close)
	return sh
}

// endpoint stands in for the proxy: it counts calls, holds /hold requests
// until release is closed, and fails /fail like a sick origin would.
type endpoint struct {
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func newEndpoint() *endpoint {
	return &endpoint{entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (*endpoint) Name() string                       { return "test_endpoint" }
func (*endpoint) Stage() filters.Stage               { return filters.Endpoint }
func (*endpoint) Order() int                         { return 0 }
func (*endpoint) ShouldFilter(*filters.Context) bool { return true }

func (e *endpoint) Apply(c *filters.Context) error {
	e.calls.Add(1)
	switch c.Path {
	case "/hold":
		e.entered <- struct{}{}
		<-e.release
	case "/slow-headers":
		// What the proxy records for an answer whose headers took 2 s; the
		// body that follows (a download, an event stream) is the client's.
		c.Attempts = append(c.Attempts, filters.Attempt{Instance: "i1", Duration: 2 * time.Second, Status: 200})
	case "/fail":
		c.Request.Response.SetBodyString("origin failed")
		c.Request.Response.SetStatusCode(http.StatusBadGateway)
		c.MarkResponded(http.StatusBadGateway, filters.CategoryOrigin5xx)
		return nil
	}
	c.Request.Response.SetBodyString("ok")
	c.MarkResponded(http.StatusOK, filters.CategorySuccess)
	return nil
}

// seen is what a probe filter observed of one request.
type seen struct {
	priority    int
	decision    loadshed.Decision
	hasDecision bool
}

// probe records, per path, the priority and dry-run decision a later
// filter sees.
type probe struct {
	name  string
	stage filters.Stage
	order int
	mu    sync.Mutex
	last  map[string]seen
}

func newProbe(name string, stage filters.Stage, order int) *probe {
	return &probe{name: name, stage: stage, order: order, last: map[string]seen{}}
}

func (p *probe) Name() string                       { return p.name }
func (p *probe) Stage() filters.Stage               { return p.stage }
func (p *probe) Order() int                         { return p.order }
func (p *probe) ShouldFilter(*filters.Context) bool { return true }

func (p *probe) Apply(c *filters.Context) error {
	d, ok := DecisionKey.Get(c)
	p.mu.Lock()
	p.last[strings.Clone(c.Path)] = seen{priority: c.Priority, decision: d, hasDecision: ok}
	p.mu.Unlock()
	return nil
}

func (p *probe) get(t *testing.T, path string) seen {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.last[path]
	if !ok {
		t.Fatalf("probe %s did not see %s", p.name, path)
	}
	return s
}

// startServer serves chain on 127.0.0.1 with a minimal stand-in for the
// gateway's request driver.
func startServer(t *testing.T, chain *filters.Chain) string {
	t.Helper()
	return chaintest.Serve(t, chain, chaintest.Options{Prepare: func(c *filters.Context) {
		if v := c.RequestHeader(clientIPHeader); len(v) > 0 {
			ip := netip.MustParseAddr(string(v))
			c.SetIdentity(trust.Identity{Peer: ip, Client: ip})
		}
	}})
}

func buildChain(t *testing.T, fs ...filters.Filter) *filters.Chain {
	t.Helper()
	ch, err := filters.NewChainBuilder().Build(fs)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func newClient(t *testing.T) *http.Client { return chaintest.Client(t) }

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, url string, headers ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// eventually polls cond until it holds or the deadline passes: the cutoff
// is republished by the shedder's ticker, and in-flight counts drop in
// completion hooks that run after the client already has its response.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitCutoff(t *testing.T, name string, cutoff func() float64, want float64) {
	t.Helper()
	eventually(t, name+" cutoff "+strconv.FormatFloat(want, 'f', 1, 64), func() bool {
		return math.Abs(cutoff()-want) < 0.05
	})
}

func beginGlobal(sh *loadshed.Shedder, n int) func() {
	for range n {
		sh.Global().Begin()
	}
	return func() {
		for range n {
			sh.Global().End()
		}
	}
}

func beginOrigin(o *loadshed.Origin, n int) func() {
	for range n {
		o.Begin()
	}
	return func() {
		for range n {
			o.Done(time.Millisecond, false)
		}
	}
}

// assertShed checks a shed response: 503, a Retry-After within base +
// jitter (1..5 s by default), the scope header and the status category.
func assertShed(t *testing.T, r result, header string, cat filters.Category) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%s), want 503", r.status, r.body)
	}
	if got := r.header.Get(HeaderShed); got != header {
		t.Errorf("%s = %q, want %q", HeaderShed, got, header)
	}
	if got := r.header.Get(filters.StatusHeader); got != string(cat) {
		t.Errorf("%s = %q, want %q", filters.StatusHeader, got, cat)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 5 {
		t.Errorf("Retry-After = %q, want whole seconds in 1..5", r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, header) {
		t.Errorf("body %q does not say why", r.body)
	}
}

func assertOK(t *testing.T, r result) {
	t.Helper()
	if r.status != http.StatusOK || r.body != "ok" {
		t.Fatalf("status %d body %q, want 200 ok (headers %v)", r.status, r.body, r.header)
	}
	if r.header.Get(HeaderShed) != "" {
		t.Errorf("admitted response carries %s: %q", HeaderShed, r.header.Get(HeaderShed))
	}
}

func TestGlobalShedAnswers503WithoutTouchingEndpoint(t *testing.T) {
	sh := newShedder(t, testConfig())
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "api"), ep))
	c := newClient(t)

	assertOK(t, do(t, c, url+"/low"))
	end := beginGlobal(sh, 180) // x = 0.8
	defer end()
	waitCutoff(t, "global", func() float64 { return sh.Global().Decide(0).Cutoff }, 48.8)

	before := ep.calls.Load()
	r := do(t, c, url+"/low")
	assertShed(t, r, "global; cutoff=48; score=90", filters.CategoryShedGlobal)
	if n := ep.calls.Load() - before; n != 0 {
		t.Fatalf("endpoint called %d times for a shed request", n)
	}
	// At the cutoff's side: 50 > 48.8 is shed, 10 is not.
	assertShed(t, do(t, c, url+"/mid"), "global; cutoff=48; score=50", filters.CategoryShedGlobal)
	assertOK(t, do(t, c, url+"/crit"))
	if n := ep.calls.Load() - before; n != 1 {
		t.Fatalf("endpoint calls %d, want 1 (the critical request)", n)
	}
	snap := sh.Snapshot()
	if got := snap.Global.Shed[loadshed.Band(scoreLow)]; got != 1 {
		t.Errorf("global shed count in band 90-100 = %d, want 1", got)
	}
	if got := snap.Global.Shed.Total(); got != 2 {
		t.Errorf("global shed total = %d, want 2", got)
	}
	// Shed requests never reached the origin scope.
	if len(snap.Origins) != 1 || snap.Origins[0].Shed.Total() != 0 {
		t.Errorf("origin scope: %+v", snap.Origins)
	}
}

func TestOriginShedNamesOriginAndSparesOthers(t *testing.T) {
	sh := newShedder(t, testConfig())
	ep := newEndpoint()
	api := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "api"), ep))
	other := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "other"), ep))
	c := newClient(t)

	end := beginOrigin(sh.Origin("api"), 180)
	defer end()
	waitCutoff(t, "origin api", func() float64 { return sh.Origin("api").Decide(0).Cutoff }, 48.8)

	before := ep.calls.Load()
	assertShed(t, do(t, c, api+"/low"), "origin; name=api; cutoff=48; score=90", filters.CategoryShedOrigin)
	if n := ep.calls.Load() - before; n != 0 {
		t.Fatalf("endpoint called %d times for a shed request", n)
	}
	assertOK(t, do(t, c, api+"/crit"))
	// A healthy origin's traffic is untouched by api's overload.
	assertOK(t, do(t, c, other+"/low"))
	if got := sh.Global().Decide(0).Cutoff; got != 100 {
		t.Errorf("global cutoff %v: one origin's overload must not move it", got)
	}
	snap := sh.Snapshot()
	for _, o := range snap.Origins {
		want := uint64(0)
		if o.Name == "api" {
			want = 1
		}
		if o.Shed.Total() != want {
			t.Errorf("origin %s shed %d, want %d", o.Name, o.Shed.Total(), want)
		}
	}
}

func TestOriginErrorRateShedsAndShedsAreNotFailures(t *testing.T) {
	cfg := testConfig()
	cfg.Origin.Signals.ErrorRate = loadshed.ErrorRateSignalConfig{
		Enabled: true, Threshold: 0.1, Max: 0.5, Window: 10 * time.Second, Buckets: 10, MinRequests: 5,
	}
	// /fail scores 0 so every failure reaches the endpoint even once the
	// origin is shedding.
	zero := 0
	cfg.Scoring.Rules = append([]loadshed.RuleConfig{{Name: "fail", Match: loadshed.MatchConfig{Paths: []string{"/fail"}}, Set: &zero, Stop: true}}, cfg.Scoring.Rules...)
	sh := newShedder(t, cfg)
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "api"), ep))
	c := newClient(t)

	for range 6 {
		if r := do(t, c, url+"/fail"); r.status != http.StatusBadGateway {
			t.Fatalf("/fail: %d", r.status)
		}
	}
	// Every completion failed: error rate 1, x = 1, cutoff 0.
	waitCutoff(t, "origin api", func() float64 { return sh.Origin("api").Decide(0).Cutoff }, 0)
	assertShed(t, do(t, c, url+"/crit"), "origin; name=api; cutoff=0; score=10", filters.CategoryShedOrigin)
	if r := do(t, c, url+"/health"); r.status != http.StatusOK {
		t.Fatalf("score 0 must pass a fully overloaded origin: %d", r.status)
	}
	// The window holds 6 failures and 1 success; the shed request was not
	// counted as an origin failure or completion.
	var errRate float64
	eventually(t, "error rate 6/7", func() bool {
		for _, s := range sh.Snapshot().Origins[0].Signals {
			if s.Name == "error_rate" {
				errRate = s.Value
			}
		}
		return math.Abs(errRate-6.0/7) < 1e-9
	})
}

// The latency signal is the origin's time to headers as the proxy measured
// it (the answered attempt), not the request's wall time; requests with no
// attempt add no latency sample.
func TestOriginLatencyIsTimeToHeaders(t *testing.T) {
	cfg := testConfig()
	cfg.Origin.Signals.Latency = loadshed.LatencySignalConfig{Enabled: true, Threshold: 5 * time.Second, Max: 10 * time.Second, MinSamples: 1}
	cfg.Origin.Signals.ErrorRate = loadshed.ErrorRateSignalConfig{Window: 10 * time.Second, Buckets: 10}
	sh := newShedder(t, cfg)
	url := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "api"), newEndpoint()))
	c := newClient(t)
	for _, p := range []string{"/slow-headers", "/crit", "/slow-headers"} {
		if r := do(t, c, url+p); r.status != http.StatusOK {
			t.Fatalf("%s: %d", p, r.status)
		}
	}
	eventually(t, "mean time to headers 2 s over the two answered attempts", func() bool {
		for _, s := range sh.Snapshot().Origins[0].Signals {
			if s.Name == "latency" {
				return s.Value == 2
			}
		}
		return false
	})
}

func TestChaosHeaderOnlyFromTrustedSource(t *testing.T) {
	sh := newShedder(t, testConfig())
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), ep))
	c := newClient(t)

	r := do(t, c, url+"/low", "X-Floodgate-Chaos", "exp-1")
	assertShed(t, r, "chaos; score=90", filters.CategoryShedChaos)
	if n := ep.calls.Load(); n != 0 {
		t.Fatalf("endpoint called %d times for a chaos shed", n)
	}
	assertOK(t, do(t, c, url+"/low"))                                  // no header
	assertOK(t, do(t, c, url+"/low", "X-Floodgate-Chaos", "other"))    // wrong value
	assertOK(t, do(t, c, url+"/crit", "X-Floodgate-Chaos", "exp-1"))   // score outside 80..100
	assertOK(t, do(t, c, url+"/health", "X-Floodgate-Chaos", "exp-1")) // score 0
	assertOK(t, do(t, c, url+"/low", "X-Floodgate-Chaos", "exp-1", clientIPHeader, "203.0.113.9"))
	snap := sh.Snapshot()
	if snap.Chaos.Total() != 1 || snap.Chaos[loadshed.Band(scoreLow)] != 1 {
		t.Errorf("chaos counts %v, want one in 90-100", snap.Chaos)
	}
	if snap.Global.Shed.Total() != 0 {
		t.Errorf("chaos sheds must not count as global sheds: %v", snap.Global.Shed)
	}
}

func TestDryRunCountsWouldShedAndAdmits(t *testing.T) {
	cfg := testConfig()
	cfg.Global.DryRun = true
	sh := newShedder(t, cfg)
	ep := newEndpoint()
	pr := newProbe("probe", filters.Outbound, 0)
	url := startServer(t, buildChain(t, NewGlobal(sh), ep, pr))
	c := newClient(t)

	end := beginGlobal(sh, 180)
	defer end()
	waitCutoff(t, "global", func() float64 { return sh.Global().Decide(0).Cutoff }, 48.8)

	for range 3 {
		assertOK(t, do(t, c, url+"/low"))
	}
	assertOK(t, do(t, c, url+"/crit"))
	if n := ep.calls.Load(); n != 4 {
		t.Fatalf("endpoint calls %d, want 4: dry run must admit everything", n)
	}
	snap := sh.Snapshot()
	if !snap.Global.DryRun {
		t.Error("snapshot does not report dry run")
	}
	if got := snap.Global.WouldShed[loadshed.Band(scoreLow)]; got != 3 || snap.Global.WouldShed.Total() != 3 {
		t.Errorf("would-shed counts %v, want 3 in 90-100", snap.Global.WouldShed)
	}
	if snap.Global.Shed.Total() != 0 {
		t.Errorf("dry run shed %v", snap.Global.Shed)
	}
	// Later filters see the would-be decision; the critical request has none.
	s := pr.get(t, "/low")
	if !s.hasDecision || !s.decision.WouldShed || s.decision.Shed || s.decision.HeaderValue() != "global; cutoff=48; score=90" {
		t.Errorf("dry-run decision for /low: %+v", s)
	}
	if s := pr.get(t, "/crit"); s.hasDecision {
		t.Errorf("/crit carries a decision: %+v", s.decision)
	}
}

func TestScoreZeroIsNeverShed(t *testing.T) {
	cfg := testConfig()
	cfg.Scoring.PriorityHeader.TrustedCIDRs = []string{"127.0.0.1/32"}
	sh := newShedder(t, cfg)
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "api"), ep))
	c := newClient(t)

	endG := beginGlobal(sh, 500) // far past max: x = 1
	defer endG()
	endO := beginOrigin(sh.Origin("api"), 500)
	defer endO()
	waitCutoff(t, "global", func() float64 { return sh.Global().Decide(0).Cutoff }, 0)
	waitCutoff(t, "origin api", func() float64 { return sh.Origin("api").Decide(0).Cutoff }, 0)

	assertShed(t, do(t, c, url+"/crit"), "global; cutoff=0; score=10", filters.CategoryShedGlobal)
	for range 5 {
		assertOK(t, do(t, c, url+"/health"))
	}
	// A trusted caller stating score 0 is treated the same.
	assertOK(t, do(t, c, url+"/low", "X-Floodgate-Priority", "0"))
}

func TestPriorityIsSetForLaterFilters(t *testing.T) {
	cfg := testConfig()
	cfg.Scoring.PriorityHeader.TrustedCIDRs = []string{"127.0.0.1/32"}
	sh := newShedder(t, cfg)
	ep := newEndpoint()
	in := newProbe("probe_in", filters.Inbound, 100)
	out := newProbe("probe_out", filters.Outbound, 0)
	url := startServer(t, buildChain(t, NewGlobal(sh), in, ep, out))
	// Without the global filter the origin filter scores the request itself.
	inOnly := newProbe("probe_in", filters.Inbound, OriginFilterOrder+1)
	originOnly := startServer(t, buildChain(t, NewOrigin(sh, "api"), inOnly, ep))
	c := newClient(t)

	for _, tc := range []struct {
		path    string
		headers []string
		want    int
	}{
		{"/low", nil, scoreLow},
		{"/crit", nil, scoreCrit},
		{"/health", nil, scoreHealth},
		{"/mid", nil, scoreMid},
		{"/stated", []string{"X-Floodgate-Priority", "7"}, 7},
		{"/untrusted", []string{"X-Floodgate-Priority", "7", clientIPHeader, "203.0.113.9"}, scoreMid},
	} {
		assertOK(t, do(t, c, url+tc.path, tc.headers...))
		if got := in.get(t, tc.path).priority; got != tc.want {
			t.Errorf("%s: inbound filter saw priority %d, want %d", tc.path, got, tc.want)
		}
		if got := out.get(t, tc.path).priority; got != tc.want {
			t.Errorf("%s: outbound filter saw priority %d, want %d", tc.path, got, tc.want)
		}
		assertOK(t, do(t, c, originOnly+tc.path, tc.headers...))
		if got := inOnly.get(t, tc.path).priority; got != tc.want {
			t.Errorf("%s: origin filter alone scored %d, want %d", tc.path, got, tc.want)
		}
	}
	// Shed requests carry their score too, for the access log and metrics.
	end := beginGlobal(sh, 180)
	defer end()
	waitCutoff(t, "global", func() float64 { return sh.Global().Decide(0).Cutoff }, 48.8)
	assertShed(t, do(t, c, url+"/shed-me", "X-Floodgate-Priority", "77"), "global; cutoff=48; score=77", filters.CategoryShedGlobal)
	if got := out.get(t, "/shed-me").priority; got != 77 {
		t.Errorf("shed request's priority %d, want 77", got)
	}
}

func TestInflightBalancedAcrossAdmitsAndSheds(t *testing.T) {
	sh := newShedder(t, testConfig())
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "api"), ep))
	c := newClient(t)
	api := sh.Origin("api")

	const held = 6
	var wg sync.WaitGroup
	for range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := do(t, c, url+"/hold"); r.status != http.StatusOK {
				t.Errorf("/hold: %d", r.status)
			}
		}()
	}
	for range held {
		<-ep.entered
	}
	if g, o := sh.Global().Inflight(), api.Inflight(); g != held || o != held {
		t.Errorf("in flight while held: global %d origin %d, want %d", g, o, held)
	}
	close(ep.release)
	wg.Wait()
	eventually(t, "in-flight back to 0", func() bool { return sh.Global().Inflight() == 0 && api.Inflight() == 0 })

	// Shed requests never count as in flight, at either scope.
	end := beginOrigin(api, 180)
	waitCutoff(t, "origin api", func() float64 { return api.Decide(0).Cutoff }, 48.8)
	for range 5 {
		assertShed(t, do(t, c, url+"/low"), "origin; name=api; cutoff=48; score=90", filters.CategoryShedOrigin)
	}
	end()
	eventually(t, "in-flight back to 0 after sheds", func() bool { return sh.Global().Inflight() == 0 && api.Inflight() == 0 })
}

// Requests really held in flight overload the gateway; their completion
// lifts the overload again, through the filter's own Begin/End.
func TestHeldRequestsDriveGlobalOverload(t *testing.T) {
	cfg := testConfig()
	cfg.Global.Signals.Inflight = loadshed.SignalConfig{Enabled: true, Threshold: 1, Max: 3}
	sh := newShedder(t, cfg)
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), NewOrigin(sh, "api"), ep))
	c := newClient(t)

	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := do(t, c, url+"/hold"); r.status != http.StatusOK {
				t.Errorf("/hold: %d", r.status)
			}
		}()
	}
	for range 3 {
		<-ep.entered
	}
	waitCutoff(t, "global", func() float64 { return sh.Global().Decide(0).Cutoff }, 0)
	assertShed(t, do(t, c, url+"/low"), "global; cutoff=0; score=90", filters.CategoryShedGlobal)
	assertOK(t, do(t, c, url+"/health"))
	close(ep.release)
	wg.Wait()
	waitCutoff(t, "global", func() float64 { return sh.Global().Decide(0).Cutoff }, 100)
	assertOK(t, do(t, c, url+"/low"))
}

// A shed request with a body is answered without reading it, and the
// connection is closed rather than drained.
func TestShedWithBodyClosesConnection(t *testing.T) {
	sh := newShedder(t, testConfig())
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), ep))
	c := newClient(t)

	req, err := http.NewRequest(http.MethodPost, url+"/low", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Floodgate-Chaos", "exp-1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
		t.Fatalf("status %d close %v: a shed request with a body must get 503 and Connection: close", resp.StatusCode, resp.Close)
	}
}

// A group route is shed by the scope of the origin it sends to now: while
// east is overloaded and active, east sheds; once west is active, west's
// (calm) scope judges the same route.
func TestGroupRouteIsShedByItsActiveOrigin(t *testing.T) {
	sh := newShedder(t, testConfig())
	ep := newEndpoint()
	var active atomic.Value
	active.Store("east")
	url := startServer(t, buildChain(t, NewGlobal(sh), NewOriginOf(sh, "api", func() string { return active.Load().(string) }), ep))
	c := newClient(t)

	end := beginOrigin(sh.Origin("east"), 180)
	defer end()
	waitCutoff(t, "origin east", func() float64 { return sh.Origin("east").Decide(0).Cutoff }, 48.8)
	assertShed(t, do(t, c, url+"/low"), "origin; name=east; cutoff=48; score=90", filters.CategoryShedOrigin)
	active.Store("west")
	assertOK(t, do(t, c, url+"/low"))
}

// busyCPU is a CPU source whose process uses all of its one core.
type busyCPU struct{ start time.Time }

func (b busyCPU) CPUTime() (time.Duration, float64, error) { return time.Since(b.start), 1, nil }
func (busyCPU) Name() string                               { return "busy" }

// While the gateway's own work starves its CPU (the cpu signal at 100 %, a long run
// queue), a global refusal is held for starved_refusals.delay and closes its connection;
// admitted requests are not touched.
func TestStarvedRefusalIsHeldAndClosesConnection(t *testing.T) {
	cfg := loadshed.Default()
	cfg.Interval = 5 * time.Millisecond
	cfg.Scoring = testConfig().Scoring
	cfg.Global.Signals.Inflight.Enabled = false
	cfg.Global.Signals.CPU.SampleEvery = 20 * time.Millisecond
	const delay = 150 * time.Millisecond
	cfg.Global.StarvedRefusals = loadshed.StarvedRefusalConfig{Delay: delay, MaxDelayed: 10, Close: true}
	sh, err := loadshed.New(cfg, loadshed.WithCPUSource(busyCPU{time.Now()}), loadshed.WithRunQueueSource(func() float64 { return 50 }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sh.Close)
	ep := newEndpoint()
	url := startServer(t, buildChain(t, NewGlobal(sh), ep))
	c := newClient(t)
	// Whole bands only: a cutoff in (89, 90) would admit part of score 90.
	eventually(t, "the starvation controller sheds all of score 90", func() bool { return sh.Global().Decide(scoreLow).Cutoff < scoreLow-1 })

	start := time.Now()
	req, err := http.NewRequest(http.MethodGet, url+"/low", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(HeaderShed) == "" {
		t.Fatalf("status %d, %s %q: want a global shed", resp.StatusCode, HeaderShed, resp.Header.Get(HeaderShed))
	}
	if took < delay {
		t.Errorf("refusal answered after %v, want held for %v", took, delay)
	}
	if !resp.Close {
		t.Error("refusal did not close the connection (close: true)")
	}
	eventually(t, "the hold is released", func() bool { return sh.Global().Held() == 0 })
	// Critical traffic is admitted and never held.
	start = time.Now()
	if r := do(t, c, url+"/crit"); r.status != http.StatusOK {
		t.Fatalf("critical request: status %d", r.status)
	}
	if took := time.Since(start); took >= delay {
		t.Errorf("admitted request took %v, as long as a held refusal", took)
	}
}

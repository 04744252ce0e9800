package loadshed

import (
	"net/netip"
	"testing"
)

func mustScorer(t *testing.T, cfg ScoringConfig) *Scorer {
	t.Helper()
	s, err := NewScorer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScorerRules(t *testing.T) {
	s := mustScorer(t, ScoringConfig{
		DefaultScore: 50,
		Rules: []RuleConfig{
			{Name: "health", Match: MatchConfig{Paths: []string{"/healthz"}}, Set: intp(0), Stop: true},
			{Name: "logs", Match: MatchConfig{PathPrefixes: []string{"/logs", "/telemetry"}}, Set: intp(95), Stop: true},
			{Name: "api", Match: MatchConfig{PathRegex: `^/api/v[0-9]+/`}, Set: intp(30)},
			{Name: "writes", Match: MatchConfig{Methods: []string{"post"}, Routes: []string{"api"}}, Add: intp(-20)},
			{Name: "prefetch", Match: MatchConfig{Headers: []ValueMatch{{Name: "x-request-kind", Values: []string{"prefetch", "background"}}}}, Add: intp(50)},
			{Name: "debug", Match: MatchConfig{Query: []ValueMatch{{Name: "debug", Present: true}}}, Add: intp(5)},
			{Name: "no-device", Match: MatchConfig{PathPrefixes: []string{"/api/"}, Headers: []ValueMatch{{Name: "X-Device", Absent: true}}}, Add: intp(1)},
			{Name: "tv", Match: MatchConfig{Headers: []ValueMatch{{Name: "X-Device", Regex: `^tv-`}}}, Add: intp(-2)},
		},
	})
	cases := []struct {
		name  string
		req   *fakeRequest
		setup func(r *fakeRequest)
		want  int
	}{
		{"default", req("GET", "/other"), nil, 50},
		{"health stops", req("GET", "/healthz"), func(r *fakeRequest) { r.headers["X-Request-Kind"] = "prefetch" }, 0},
		{"logs prefix", req("POST", "/logs/batch"), nil, 95},
		{"exact path only", req("GET", "/healthz/deep"), nil, 50},
		{"api regex + absent device", req("GET", "/api/v2/titles"), nil, 31},
		{"regex miss", req("GET", "/api/vx/titles"), nil, 51},
		{"method and route both needed", req("POST", "/api/v1/rate"), func(r *fakeRequest) { r.route = "api" }, 11},
		{"route mismatch", req("POST", "/api/v1/rate"), func(r *fakeRequest) { r.route = "web" }, 31},
		{"header case-insensitive value", req("GET", "/api/v1/x"), func(r *fakeRequest) { r.headers["X-Request-Kind"] = "PreFetch" }, 81},
		{"clamp at 100", req("GET", "/x"), func(r *fakeRequest) {
			r.headers["X-Request-Kind"] = "background"
			r.query["debug"] = "1"
		}, 100},
		{"regex header", req("GET", "/api/v1/x"), func(r *fakeRequest) { r.headers["X-Device"] = "tv-samsung" }, 28},
		{"regex header miss", req("GET", "/api/v1/x"), func(r *fakeRequest) { r.headers["X-Device"] = "phone" }, 30},
	}
	for _, c := range cases {
		if c.setup != nil {
			c.setup(c.req)
		}
		if got := s.Score(c.req); got != c.want {
			t.Errorf("%s: score = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestScorerAddClampsAtZero(t *testing.T) {
	s := mustScorer(t, ScoringConfig{DefaultScore: 10, Rules: []RuleConfig{{Add: intp(-50)}, {Add: intp(5)}}})
	if got := s.Score(req("GET", "/")); got != 5 {
		t.Fatalf("score = %d, want 5 (clamped to 0 after the first rule, then +5)", got)
	}
}

func TestPriorityHeaderOnlyFromTrustedCIDRs(t *testing.T) {
	s := mustScorer(t, ScoringConfig{
		DefaultScore: 60,
		PriorityHeader: PriorityHeaderConfig{
			Name:         "X-Floodgate-Priority",
			TrustedCIDRs: []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.1"},
		},
	})
	cases := []struct {
		ip, hdr string
		want    int
	}{
		{"10.1.2.3", "5", 5},
		{"::ffff:10.1.2.3", "7", 7}, // IPv4-mapped from a dual-stack listener
		{"2001:db8::1", "0", 0},
		{"192.0.2.1", "100", 100},
		{"192.0.2.2", "5", 60},   // bare address is a /32
		{"203.0.113.9", "5", 60}, // untrusted: ignored
		{"11.0.0.1", "0", 60},    // untrusted
		{"10.1.2.3", "101", 60},  // out of range: ignored
		{"10.1.2.3", "-1", 60},   // not a plain number
		{"10.1.2.3", "abc", 60},  // garbage
		{"10.1.2.3", " 42 ", 42}, // surrounding space tolerated
		{"10.1.2.3", "", 60},     // absent
		{"", "5", 60},            // unknown client address
	}
	for _, c := range cases {
		r := req("GET", "/")
		if c.ip != "" {
			r.ip = netip.MustParseAddr(c.ip)
		} else {
			r.ip = netip.Addr{}
		}
		if c.hdr != "" {
			r.headers["X-Floodgate-Priority"] = c.hdr
		}
		if got := s.Score(r); got != c.want {
			t.Errorf("ip=%q header=%q: score = %d, want %d", c.ip, c.hdr, got, c.want)
		}
	}
}

func TestPriorityHeaderIgnoredWithoutTrustedCIDRs(t *testing.T) {
	s := mustScorer(t, ScoringConfig{DefaultScore: 60, PriorityHeader: PriorityHeaderConfig{Name: "X-Floodgate-Priority"}})
	r := req("GET", "/")
	r.ip = netip.MustParseAddr("127.0.0.1")
	r.headers["X-Floodgate-Priority"] = "1"
	if got := s.Score(r); got != 60 {
		t.Fatalf("score = %d, want 60: no trusted CIDRs means nobody is trusted", got)
	}
}

func TestScoreDoesNotAllocate(t *testing.T) {
	s := mustScorer(t, ScoringConfig{
		DefaultScore:   50,
		PriorityHeader: PriorityHeaderConfig{Name: "X-Floodgate-Priority", TrustedCIDRs: []string{"10.0.0.0/8"}},
		Rules: []RuleConfig{
			{Match: MatchConfig{PathPrefixes: []string{"/logs"}}, Set: intp(95), Stop: true},
			{Match: MatchConfig{PathRegex: `^/api/v[0-9]+/`}, Set: intp(30)},
			{Match: MatchConfig{Headers: []ValueMatch{{Name: "X-Request-Kind", Values: []string{"prefetch"}}}}, Add: intp(50)},
		},
	})
	r := req("GET", "/api/v1/play")
	r.headers["X-Request-Kind"] = "prefetch"
	r.headers["X-Floodgate-Priority"] = "bogus"
	r.ip = netip.MustParseAddr("10.0.0.1")
	if n := testing.AllocsPerRun(1000, func() { _ = s.Score(r) }); n != 0 {
		t.Fatalf("Score allocates %v times per call", n)
	}
}

func BenchmarkScore(b *testing.B) {
	cfg := Default().Scoring
	cfg.Rules = []RuleConfig{
		{Match: MatchConfig{Paths: []string{"/healthz"}}, Set: intp(0), Stop: true},
		{Match: MatchConfig{PathPrefixes: []string{"/logs", "/telemetry"}}, Set: intp(95), Stop: true},
		{Match: MatchConfig{PathRegex: `^/api/v[0-9]+/`}, Set: intp(30)},
		{Match: MatchConfig{Headers: []ValueMatch{{Name: "X-Request-Kind", Values: []string{"prefetch"}}}}, Add: intp(50)},
	}
	s, err := NewScorer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r := req("GET", "/api/v1/play")
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Score(r)
	}
}

// A verified client certificate naming a trusted identity may set the
// priority, next to the trusted CIDRs; one naming another identity, or
// none, may not.
func TestPriorityHeaderFromTrustedIdentities(t *testing.T) {
	s := mustScorer(t, ScoringConfig{
		DefaultScore: 60,
		PriorityHeader: PriorityHeaderConfig{
			Name:              "X-Floodgate-Priority",
			TrustedCIDRs:      []string{"10.0.0.0/8"},
			TrustedIdentities: []string{"spiffe://prod/ns/ops/sa/deploy", "dns:ops.internal"},
		},
	})
	cases := []struct {
		names []string
		want  int
	}{
		{[]string{"uri:spiffe://prod/ns/ops/sa/deploy", "cn:deploy"}, 5},
		{[]string{"dns:ops.internal"}, 5},
		{[]string{"uri:spiffe://prod/ns/web/sa/frontend"}, 60},
		{[]string{"dns:OPS.internal.evil"}, 60},
		{[]string{"cn:ops.internal"}, 60}, // a CN is not a DNS name
		{nil, 60},
	}
	for _, c := range cases {
		r := req("GET", "/")
		r.certNames = c.names
		r.headers["X-Floodgate-Priority"] = "5"
		if got := s.Score(r); got != c.want {
			t.Errorf("names %v: score = %d, want %d", c.names, got, c.want)
		}
	}
}

package loadshed

import (
	"fmt"
	"net/textproto"
	"regexp"
	"strings"

	"github.com/floodgate-dev/floodgate/trust"
)

// Request is what scoring and chaos need to know about an HTTP request. The
// gateway's filter adapter implements it over its own request type. Header
// must look names up case-insensitively; a missing header or query
// parameter is "". Identity is only called when a trusted-source check is
// needed, so it may be computed lazily.
type Request interface {
	Method() string
	Path() string
	Route() string
	Header(name string) string
	Query(name string) string
	Identity() trust.Identity
}

// Scorer assigns priority scores. It is compiled once from a ScoringConfig
// and immutable afterwards, so it is safe for concurrent use.
type Scorer struct {
	defaultScore int
	rules        []rule
	prioHeader   string
	prioTrusted  trustedSet
}

type rule struct {
	routes   []string
	methods  []string
	paths    []string
	prefixes []string
	pathRe   *regexp.Regexp
	headers  []valueMatcher
	query    []valueMatcher
	set      bool
	value    int
	stop     bool
}

type valueMatcher struct {
	name    string
	values  []string
	re      *regexp.Regexp
	present bool
	absent  bool
}

// NewScorer validates and compiles cfg.
func NewScorer(cfg ScoringConfig) (*Scorer, error) {
	var errs errList
	cfg.validate("scoring", &errs)
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	s := &Scorer{defaultScore: cfg.DefaultScore, prioHeader: cfg.PriorityHeader.Name}
	var err error
	if s.prioTrusted, err = newTrustedSet(cfg.PriorityHeader.TrustedCIDRs, cfg.PriorityHeader.TrustedIdentities); err != nil {
		return nil, fmt.Errorf("scoring.priority_header.%w", err)
	}
	s.rules = make([]rule, len(cfg.Rules))
	for i, rc := range cfg.Rules {
		r := &s.rules[i]
		m := rc.Match
		r.routes = m.Routes
		for _, meth := range m.Methods {
			r.methods = append(r.methods, strings.ToUpper(meth))
		}
		r.paths = m.Paths
		r.prefixes = m.PathPrefixes
		if m.PathRegex != "" {
			r.pathRe = regexp.MustCompile(m.PathRegex) // validated above
		}
		r.headers = compileValueMatchers(m.Headers, textproto.CanonicalMIMEHeaderKey)
		r.query = compileValueMatchers(m.Query, func(s string) string { return s })
		if rc.Set != nil {
			r.set, r.value = true, *rc.Set
		} else {
			r.value = *rc.Add
		}
		r.stop = rc.Stop
	}
	return s, nil
}

func compileValueMatchers(in []ValueMatch, canon func(string) string) []valueMatcher {
	if len(in) == 0 {
		return nil
	}
	out := make([]valueMatcher, len(in))
	for i, v := range in {
		out[i] = valueMatcher{name: canon(v.Name), values: v.Values, present: v.Present, absent: v.Absent}
		if v.Regex != "" {
			out[i].re = regexp.MustCompile(v.Regex) // validated by the caller
		}
	}
	return out
}

// Score returns r's priority score in 0..100. A valid priority header from a
// trusted client wins outright; otherwise the score starts at the default
// and every matching rule sets or adjusts it in order, clamped after each
// step, until a matching rule with stop.
func (s *Scorer) Score(r Request) int {
	if s.prioHeader != "" && !s.prioTrusted.Empty() {
		if v := r.Header(s.prioHeader); v != "" {
			if p, ok := parseScore(v); ok && s.prioTrusted.Trusts(r.Identity()) {
				return p
			}
		}
	}
	score := s.defaultScore
	for i := range s.rules {
		ru := &s.rules[i]
		if !ru.matches(r) {
			continue
		}
		if ru.set {
			score = ru.value
		} else {
			score = clampScore(score + ru.value)
		}
		if ru.stop {
			break
		}
	}
	return score
}

func clampScore(v int) int {
	switch {
	case v < 0:
		return 0
	case v > 100:
		return 100
	}
	return v
}

// parseScore accepts a plain decimal 0..100 without allocating (strconv
// allocates its error on bad input, which an untrusted client controls).
func parseScore(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 3 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 100 {
		return 0, false
	}
	return n, true
}

func (ru *rule) matches(r Request) bool {
	if len(ru.routes) > 0 && !anyEqual(ru.routes, r.Route()) {
		return false
	}
	if len(ru.methods) > 0 && !anyEqual(ru.methods, r.Method()) {
		return false
	}
	if len(ru.paths) > 0 || len(ru.prefixes) > 0 || ru.pathRe != nil {
		p := r.Path()
		if len(ru.paths) > 0 && !anyEqual(ru.paths, p) {
			return false
		}
		if len(ru.prefixes) > 0 && !anyPrefix(ru.prefixes, p) {
			return false
		}
		if ru.pathRe != nil && !ru.pathRe.MatchString(p) {
			return false
		}
	}
	for i := range ru.headers {
		if !ru.headers[i].matches(r.Header(ru.headers[i].name)) {
			return false
		}
	}
	for i := range ru.query {
		if !ru.query[i].matches(r.Query(ru.query[i].name)) {
			return false
		}
	}
	return true
}

func (m *valueMatcher) matches(v string) bool {
	switch {
	case m.absent:
		return v == ""
	case m.present:
		return v != ""
	case m.re != nil:
		return v != "" && m.re.MatchString(v)
	}
	for _, want := range m.values {
		if strings.EqualFold(want, v) {
			return true
		}
	}
	return false
}

func anyEqual(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func anyPrefix(list []string, v string) bool {
	for _, s := range list {
		if strings.HasPrefix(v, s) {
			return true
		}
	}
	return false
}

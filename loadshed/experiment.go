package loadshed

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Chaos experiments with groups. An experiment picks its members by a
// stable hash of a key (a user or device header, or the client identity):
// the key's bucket in [0, 1) puts the request in the experiment group below
// Fraction, in the control group (the same size) from Fraction to
// 2*Fraction, and outside the experiment above that. The same key always
// lands in the same group, in every gateway of a fleet and across
// restarts, so the effect of the experiment on the experiment group is
// measured against an untouched control group of the same size.

// Actions an experiment can take on its experiment group.
const (
	ActionShed  = "shed"  // 503, as if shed under load (category local_shed_chaos)
	ActionFail  = "fail"  // answer Status (category local_shed_chaos)
	ActionDelay = "delay" // wait Delay, then serve the request normally
)

// Group is where a request stands in an experiment.
type Group uint8

// Groups; GroupNone is a request the experiment does not count.
const (
	GroupNone Group = iota
	GroupExperiment
	GroupControl
)

func (g Group) String() string {
	switch g {
	case GroupExperiment:
		return "experiment"
	case GroupControl:
		return "control"
	}
	return "none"
}

// ExperimentConfig is one entry of loadshed.chaos.experiments. An
// experiment runs from the moment a config holding it is loaded for
// Duration; a reload that leaves it unchanged keeps its clock (an ended
// experiment stays ended), one that changes any of its keys starts it
// again, and removing it stops it.
type ExperimentConfig struct {
	// Name identifies the experiment in metrics and logs and salts the
	// hash, so two experiments pick independent groups.
	Name string `mapstructure:"name"`
	// Key is what membership hashes: "header:X-User-Id" (a request
	// without the header is in no group) or "client_ip" (the client
	// identity derived by the gateway's trust rule).
	Key string `mapstructure:"key"`
	// Fraction is the share of keys in the experiment group, (0, 0.5];
	// the control group is as large.
	Fraction float64 `mapstructure:"fraction"`
	// Origin limits the experiment to requests for this origin; empty
	// means every request (the global scope).
	Origin string `mapstructure:"origin"`
	// MinScore and MaxScore limit it to a priority range (default 1..100;
	// score 0 is never touched).
	MinScore int `mapstructure:"min_score"`
	MaxScore int `mapstructure:"max_score"`
	// Action is shed, fail or delay.
	Action string `mapstructure:"action"`
	// Status is the answer of "fail" (default 500).
	Status int `mapstructure:"status"`
	// Delay is the latency "delay" adds.
	Delay time.Duration `mapstructure:"delay"`
	// Duration is how long the experiment runs after it is loaded.
	Duration time.Duration `mapstructure:"duration"`
}

// withDefaults fills the keys an experiment may omit.
func (e ExperimentConfig) withDefaults() ExperimentConfig {
	if e.MinScore == 0 {
		e.MinScore = 1
	}
	if e.MaxScore == 0 {
		e.MaxScore = 100
	}
	if e.Action == ActionFail && e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	e.Origin = strings.ToLower(strings.TrimSpace(e.Origin))
	return e
}

func (e ExperimentConfig) validate(path string, errs *errList) {
	if strings.TrimSpace(e.Name) == "" {
		errs.add(path+".name", "required")
	}
	if _, err := parseExperimentKey(e.Key); err != nil {
		errs.add(path+".key", "%v", err)
	}
	if !finite(e.Fraction) || e.Fraction <= 0 || e.Fraction > 0.5 {
		errs.add(path+".fraction", "must be in (0, 0.5] (the control group is as large), got %v", e.Fraction)
	}
	e = e.withDefaults()
	if e.MinScore < 1 || e.MinScore > 100 {
		errs.add(path+".min_score", "must be in 1..100 (score 0 is never touched), got %d", e.MinScore)
	}
	if e.MaxScore < e.MinScore || e.MaxScore > 100 {
		errs.add(path+".max_score", "must be in min_score..100, got %d", e.MaxScore)
	}
	switch e.Action {
	case ActionShed:
	case ActionFail:
		if e.Status < 400 || e.Status > 599 {
			errs.add(path+".status", "must be a 4xx or 5xx status, got %d", e.Status)
		}
	case ActionDelay:
		if e.Delay <= 0 || e.Delay > time.Minute {
			errs.add(path+".delay", "must be in (0, 1m], got %s", e.Delay)
		}
	default:
		errs.add(path+".action", "must be one of shed, fail, delay; got %q", e.Action)
	}
	if e.Duration <= 0 {
		errs.add(path+".duration", "required: how long the experiment runs once loaded (e.g. 30m)")
	}
}

func validateExperiments(path string, list []ExperimentConfig, errs *errList) {
	seen := map[string]int{}
	for i, e := range list {
		at := fmt.Sprintf("%s[%d]", path, i)
		e.validate(at, errs)
		if j, dup := seen[e.Name]; dup && e.Name != "" {
			errs.add(at+".name", "%q already used by %s[%d]", e.Name, path, j)
		}
		seen[e.Name] = i
	}
}

// parseExperimentKey returns the header a key hashes ("" for client_ip).
func parseExperimentKey(k string) (header string, err error) {
	switch {
	case k == "client_ip":
		return "", nil
	case strings.HasPrefix(k, "header:") && len(strings.TrimSpace(k[len("header:"):])) > 0:
		return strings.TrimSpace(k[len("header:"):]), nil
	}
	return "", fmt.Errorf(`must be "client_ip" or "header:NAME", got %q`, k)
}

// Bucket is a key's stable position in [0, 1) for experiment name: FNV-1a
// (64 bit) over the name, a zero byte and the key, mixed with MurmurHash3's
// 64-bit finalizer (FNV alone spreads keys that differ in their last bytes,
// such as sequential user ids, unevenly over the top bits), its top 53 bits
// as a fraction. Operators can compute a user's group with it (GroupOf).
func Bucket(name string, key []byte) float64 {
	h := fnvString(fnvOffset, name)
	h *= fnvPrime // the zero byte between name and key: XOR with 0 is a no-op
	for _, b := range key {
		h = (h ^ uint64(b)) * fnvPrime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}

// GroupOf is the group of key in an experiment called name with fraction.
func GroupOf(name string, key []byte, fraction float64) Group {
	switch u := Bucket(name, key); {
	case u < fraction:
		return GroupExperiment
	case u < 2*fraction:
		return GroupControl
	}
	return GroupNone
}

// clientKey is the bytes hashed for a client_ip key: the address in its
// 16-byte form, so hashing allocates nothing.
func clientKey(a netip.Addr, buf *[16]byte) []byte {
	*buf = a.Unmap().As16()
	return buf[:]
}

// experiment is one running experiment of a config generation.
type experiment struct {
	cfg    ExperimentConfig // defaults filled
	header string           // "" hashes the client identity
	start  time.Time
	end    time.Time
	// notes describe a member of each group, built once (see
	// Membership.Note).
	notes [3]string
}

// Membership is a request's place in one experiment, and what the
// experiment does to it.
type Membership struct {
	Experiment string
	Group      Group
	// Action is set for the experiment group only: shed, fail or delay.
	Action string
	Status int
	Delay  time.Duration
	// Note says it in words ("chaos experiment checkout: control group"),
	// for the request's passport.
	Note string
}

// compileExperiments builds a generation's experiments. An experiment
// that prev also ran with exactly the same settings keeps its start (a
// reload does not restart or revive it); any other starts at now.
func compileExperiments(list []ExperimentConfig, prev []*experiment, now time.Time) []*experiment {
	out := make([]*experiment, 0, len(list))
	for _, ec := range list {
		ec = ec.withDefaults()
		header, _ := parseExperimentKey(ec.Key) // validated
		e := &experiment{cfg: ec, header: header, start: now}
		for _, g := range []Group{GroupExperiment, GroupControl} {
			e.notes[g] = "chaos experiment " + ec.Name + ": " + g.String() + " group"
		}
		for _, p := range prev {
			if p.cfg == ec {
				e.start = p.start
			}
		}
		e.end = e.start.Add(ec.Duration)
		out = append(out, e)
	}
	return out
}

// ChaosExperiments reports whether any experiment of the scope is
// configured: global ("" origin) or the named origin's. It is the cheap
// check before Experiment.
func (s *Shedder) ChaosExperiments(origin string) bool {
	for _, e := range s.cur.Load().experiments {
		if e.cfg.Origin == origin {
			return true
		}
	}
	return false
}

// Experiment returns the first running experiment of the scope (global
// for origin "", else that origin's) that counts r, with its group: a
// request is counted by one experiment per scope at most, the first listed
// whose key it carries and whose group it falls in, so a control group is
// never touched by the experiments listed after its own. ok is false when
// no experiment counts it.
func (s *Shedder) Experiment(origin string, r Request, score int) (m Membership, ok bool) {
	exps := s.cur.Load().experiments
	if len(exps) == 0 {
		return Membership{}, false
	}
	now := s.now()
	var ipBuf [16]byte
	for _, e := range exps {
		if e.cfg.Origin != origin || score < e.cfg.MinScore || score > e.cfg.MaxScore ||
			now.Before(e.start) || !now.Before(e.end) {
			continue
		}
		var key []byte
		if e.header == "" {
			ip := r.Identity().Client
			if !ip.IsValid() {
				continue
			}
			key = clientKey(ip, &ipBuf)
		} else if v := r.Header(e.header); v != "" {
			key = []byte(v)
		} else {
			continue
		}
		g := GroupOf(e.cfg.Name, key, e.cfg.Fraction)
		if g == GroupNone {
			continue
		}
		m = Membership{Experiment: e.cfg.Name, Group: g, Note: e.notes[g]}
		if g == GroupExperiment {
			m.Action, m.Status, m.Delay = e.cfg.Action, e.cfg.Status, e.cfg.Delay
		}
		return m, true
	}
	return Membership{}, false
}

// ExperimentState is an experiment as /admin/shed shows it.
type ExperimentState struct {
	Name   string    `json:"name"`
	Scope  string    `json:"scope"` // "global" or the origin's name
	Key    string    `json:"key"`
	Action string    `json:"action"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Active bool      `json:"active"`
}

func (s *Shedder) experimentStates(now time.Time) []ExperimentState {
	exps := s.cur.Load().experiments
	out := make([]ExperimentState, 0, len(exps))
	for _, e := range exps {
		scope := e.cfg.Origin
		if scope == "" {
			scope = "global"
		}
		out = append(out, ExperimentState{Name: e.cfg.Name, Scope: scope, Key: e.cfg.Key, Action: e.cfg.Action,
			Start: e.start, End: e.end, Active: !now.Before(e.start) && now.Before(e.end)})
	}
	return out
}

// ExperimentEvent is a change in an experiment's life.
type ExperimentEvent struct {
	Name string
	// What is "started", "ended" (its duration is over) or "stopped" (a
	// reload removed or changed it before it ended).
	What string
	At   time.Time
}

// WithExperimentEvents makes the Shedder call fn when an experiment
// starts, ends or is stopped (the gateway logs them). fn runs on the
// ticker or inside Update and must be quick.
func WithExperimentEvents(fn func(ExperimentEvent)) Option {
	return func(o *options) { o.experimentEvents = fn }
}

// announceExperiments reports what changed from prev to cur (Update and
// New) and which experiments of cur have run out by now (each tick); an
// experiment's end is reported once.
func (s *Shedder) announceExperiments(prev, cur []*experiment, now time.Time) {
	if s.experimentEvents == nil {
		return
	}
	kept := map[*experiment]bool{}
	for _, e := range cur {
		for _, p := range prev {
			if p.cfg == e.cfg {
				kept[p] = true
			}
		}
	}
	for _, p := range prev {
		if !kept[p] && now.Before(p.end) {
			s.experimentEvents(ExperimentEvent{Name: p.cfg.Name, What: "stopped", At: now})
		}
	}
	for _, e := range cur {
		if e.start.Equal(now) {
			s.experimentEvents(ExperimentEvent{Name: e.cfg.Name, What: "started", At: now})
		}
	}
}

// expireExperiments reports experiments whose duration ran out since the
// last tick.
func (s *Shedder) expireExperiments(last, now time.Time) {
	if s.experimentEvents == nil {
		return
	}
	for _, e := range s.cur.Load().experiments {
		if !e.end.After(now) && e.end.After(last) {
			s.experimentEvents(ExperimentEvent{Name: e.cfg.Name, What: "ended", At: e.end})
		}
	}
}

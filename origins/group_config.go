package origins

import (
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

// GroupConfig is an origin group: an ordered list of origins serving the
// same thing (the same service in two regions). A route that names the
// group (origin_group: NAME) sends to its active origin: the first one
// healthy enough, failing back to an earlier one only after it has been
// healthy for failover.failback_after.
type GroupConfig struct {
	Name string `mapstructure:"name"`
	// Origins are the members in order of preference.
	Origins  []string       `mapstructure:"origins"`
	Failover FailoverConfig `mapstructure:"failover"`
	// CrossOriginRetries sends a request's retries and hedges to the next
	// healthy origin of the group instead of another instance of the same
	// origin (Envoy's previous_priorities). Off: they stay in the origin.
	CrossOriginRetries bool `mapstructure:"cross_origin_retries"`
}

// FailoverConfig says when a group's origin is not healthy enough. An
// origin is unhealthy when it has no eligible instance (none discovered;
// all failing health checks, breaker open or ejected), when more than
// max_open_breaker_fraction of its instances have their breaker open, or
// when it sheds requests of score shed_above_score (its load-shedding
// cutoff is below it).
type FailoverConfig struct {
	// MaxOpenBreakerFraction in (0, 1]; 1 leaves only the no-eligible rule.
	MaxOpenBreakerFraction float64 `mapstructure:"max_open_breaker_fraction"`
	// ShedAboveScore in [0, 100]; 0 disables the shedding rule (no cutoff
	// is below 0).
	ShedAboveScore float64 `mapstructure:"shed_above_score"`
	// FailbackAfter is how long an earlier origin must have been healthy,
	// without a break, before traffic returns to it; 0 returns at once.
	FailbackAfter time.Duration `mapstructure:"failback_after"`
	// CheckInterval is how often the members are judged besides the
	// events that judge them at once (instance set, health, breaker and
	// ejection changes): the shedding cutoff has no event.
	CheckInterval time.Duration `mapstructure:"check_interval"`
}

// DefaultGroupConfig returns a group's defaults.
func DefaultGroupConfig() GroupConfig {
	return GroupConfig{Failover: FailoverConfig{
		MaxOpenBreakerFraction: 0.5,
		FailbackAfter:          30 * time.Second,
		CheckInterval:          time.Second,
	}}
}

// DecodeGroups decodes the origin_groups section: a list of groups, each
// decoded over DefaultGroupConfig(). Names are lower-cased, as route
// references and origin names are.
func DecodeGroups(at string, raw any) ([]GroupConfig, error) {
	var errs decode.Errors
	list, ok := raw.([]any)
	if !ok {
		errs.Add(at, "must be a list of origin groups")
		return nil, errs.Err()
	}
	out := make([]GroupConfig, 0, len(list))
	for i, item := range list {
		g := DefaultGroupConfig()
		path := at + "[" + strconv.Itoa(i) + "]"
		if err := decode.Decode(item, &g); err != nil {
			errs.Merge(path, err)
			continue
		}
		g.Name = strings.ToLower(strings.TrimSpace(g.Name))
		for j := range g.Origins {
			g.Origins[j] = strings.ToLower(strings.TrimSpace(g.Origins[j]))
		}
		out = append(out, g)
	}
	return out, errs.Err()
}

// ValidateGroups checks groups against the origins they name; errors name
// "[i].field" paths (the caller prefixes the section key).
func ValidateGroups(groups []GroupConfig, origins map[string]OriginConfig) error {
	var fe decode.Errors
	seen := map[string]int{}
	for i, g := range groups {
		at := "[" + strconv.Itoa(i) + "]"
		switch {
		case !validName(g.Name):
			fe.Add(at+".name", "required; group names may use only a-z, 0-9, '-' and '_', got %q", g.Name)
		case seen[g.Name] > 0:
			fe.Add(at+".name", "%q is already the name of origin_groups[%d]", g.Name, seen[g.Name]-1)
		default:
			if _, clash := origins[g.Name]; clash {
				fe.Add(at+".name", "%q is also an origin's name; a route names one or the other, so keep them apart", g.Name)
			}
			seen[g.Name] = i + 1
		}
		if len(g.Origins) < 2 {
			fe.Add(at+".origins", "list at least two origins in order of preference (a group of one is that origin)")
		}
		members := map[string]bool{}
		for j, m := range g.Origins {
			p := at + ".origins[" + strconv.Itoa(j) + "]"
			if _, ok := origins[m]; !ok {
				fe.Add(p, "unknown origin %q", m)
			} else if members[m] {
				fe.Add(p, "origin %q is listed twice", m)
			}
			members[m] = true
		}
		f := g.Failover
		if f.MaxOpenBreakerFraction <= 0 || f.MaxOpenBreakerFraction > 1 {
			fe.Add(at+".failover.max_open_breaker_fraction", "must be in (0, 1], got %v", f.MaxOpenBreakerFraction)
		}
		if f.ShedAboveScore < 0 || f.ShedAboveScore > 100 {
			fe.Add(at+".failover.shed_above_score", "must be a score in [0, 100] (0 disables), got %v", f.ShedAboveScore)
		}
		if f.FailbackAfter < 0 {
			fe.Add(at+".failover.failback_after", "must be >= 0")
		}
		if f.CheckInterval < 10*time.Millisecond {
			fe.Add(at+".failover.check_interval", "must be at least 10ms")
		}
	}
	return fe.Err()
}

package ratelimit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// LimitersFor returns the gateway's Limiters for a filter instance that
// applies the policy named policy, after checking that such a policy is
// defined. The name is checked against the snapshot's config when the
// gateway provides it (PoliciesKey), else against the policies currently
// installed. Both "rate_limit" and "concurrency_limit" build this way;
// filter and kind word the errors, configured and installed list the
// names of the policy kind the filter applies.
func LimitersFor(env *filters.Env, filter, kind, policy string,
	configured func(ratelimit.Config) []string, installed func(*ratelimit.Limiters) []string,
) (*ratelimit.Limiters, error) {
	lim, ok := LimitersKey.Lookup(env.Services)
	if !ok || lim == nil {
		return nil, fmt.Errorf("%s needs the gateway's ratelimit.Limiters service (a wiring bug)", filter)
	}
	var known []string
	if cfg, ok := PoliciesKey.Lookup(env.Services); ok {
		known = configured(cfg)
	} else {
		known = installed(lim)
	}
	if !slices.Contains(known, policy) {
		return nil, fmt.Errorf("options.policy: unknown %s policy %q (defined: %s)", kind, policy, listOrNone(known))
	}
	return lim, nil
}

// PolicyNames lists the names of policies, in order.
func PolicyNames[P any](policies []P, name func(P) string) []string {
	var names []string
	for _, p := range policies {
		names = append(names, name(p))
	}
	return names
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

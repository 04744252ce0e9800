package origins

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A balancer chooses the instance of one attempt among the candidates of a
// pick (healthy, breaker closed or probing, not yet tried by the request;
// every instance in panic mode) and admits it. eligible counts them. It is
// chosen by name with an origin's lb key; adding one is a new file with
// its function and one registerBalancer line in its init.
type balancer func(o *Origin, p *policy, s *snapshot, m *pickMode, eligible int) (*Instance, func(error), error)

// balancers is the registry of balancers, filled at init time.
var balancers = map[LB]balancer{}

func registerBalancer(name LB, b balancer) {
	if _, dup := balancers[name]; dup {
		panic(fmt.Sprintf("origins: balancer %q registered twice", name))
	}
	balancers[name] = b
}

func init() {
	registerBalancer(LBP2C, (*Origin).chooseP2C)
	registerBalancer(LBRoundRobin, func(o *Origin, _ *policy, s *snapshot, m *pickMode, _ int) (*Instance, func(error), error) {
		return o.chooseRoundRobin(s, m)
	})
}

// Balancers lists the registered balancer names (the lb values a config
// may use), sorted.
func Balancers() []LB { return slices.Sorted(maps.Keys(balancers)) }

func validBalancer(lb LB) error {
	if _, ok := balancers[lb]; ok {
		return nil
	}
	names := make([]string, 0, len(balancers))
	for _, n := range Balancers() {
		names = append(names, string(n))
	}
	return fmt.Errorf("must be one of %s; got %q", strings.Join(names, ", "), lb)
}

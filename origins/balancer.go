package origins

import (
	"fmt"
	"slices"
	"strings"
)

// A balancer chooses the instance of one attempt among the candidates of a
// pick (healthy, breaker closed or probing, not yet tried by the request;
// every instance in panic mode) and admits it. eligible counts them. It is
// chosen by name with an origin's lb key; adding one is a new file with its
// function, a name in balancerNames and a case in (*Origin).balance.
//
// balance dispatches with a switch rather than a table of functions: an
// indirect call would make the request's pickMode escape to the heap, one
// allocation per request for nothing.
func (o *Origin) balance(p *policy, s *snapshot, m *pickMode, eligible int) (*Instance, breakerSlot, error) {
	switch p.lb {
	case LBRoundRobin:
		return o.chooseRoundRobin(s, m)
	default: // LBP2C; validBalancer admits no other name
		return o.chooseP2C(p, s, m, eligible)
	}
}

// balancerNames are the lb values a config may use, sorted.
var balancerNames = []LB{LBP2C, LBRoundRobin}

// Balancers lists the balancer names (the lb values a config may use),
// sorted.
func Balancers() []LB { return slices.Clone(balancerNames) }

func validBalancer(lb LB) error {
	if slices.Contains(balancerNames, lb) {
		return nil
	}
	names := make([]string, 0, len(balancerNames))
	for _, n := range balancerNames {
		names = append(names, string(n))
	}
	return fmt.Errorf("must be one of %s; got %q", strings.Join(names, ", "), lb)
}

package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/floodgate-dev/floodgate/ratelimit"
)

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	list, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range list {
		out[f.GetName()] = f
	}
	return out
}

// The rate-limit table metrics follow a real policy whose max_keys is
// reached: tracked keys, the cap, overflow-bucket use and its refusals.
func TestRateLimitTableAndOverflowMetrics(t *testing.T) {
	lim := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer lim.Close()
	if err := lim.Update([]ratelimit.Policy{{Name: "per-client", Rate: 1, Burst: 1, Key: []string{"client_ip"}, MaxKeys: 2, OverflowRate: 1, OverflowBurst: 1}}); err != nil {
		t.Fatal(err)
	}
	m := New()
	m.SetRateLimitSource(func() []RateLimitPolicy {
		var out []RateLimitPolicy
		for _, s := range lim.Stats() {
			out = append(out, RateLimitPolicy{Policy: s.Name, Keys: s.Keys, MaxKeys: s.MaxKeys, Overflowed: s.Overflowed, OverflowRejected: s.OverflowRejected})
		}
		return out
	})
	for _, key := range []string{"a", "b", "c", "d", "e"} { // a and b are tracked; c, d, e share the overflow bucket
		lim.Allow("per-client", []byte(key))
	}
	fams := gather(t, m)
	policy := map[string]string{"policy": "per-client"}
	if got := value(t, fams, "floodgate_rate_limit_keys", policy); got != 2 {
		t.Errorf("tracked keys = %v, want 2", got)
	}
	if got := value(t, fams, "floodgate_rate_limit_max_keys", policy); got != 2 {
		t.Errorf("max keys = %v, want 2", got)
	}
	if got := value(t, fams, "floodgate_rate_limit_overflow_total", policy); got != 3 {
		t.Errorf("overflow use = %v, want 3", got)
	}
	if got := value(t, fams, "floodgate_rate_limit_overflow_rejected_total", policy); got != 2 {
		t.Errorf("overflow rejected = %v, want 2 (burst 1 for three keys)", got)
	}
}

func TestRefusedConnectionsCounterExistsBeforeTheFirstRefusal(t *testing.T) {
	m := New()
	reason := map[string]string{"reason": RefusedMaxConnections}
	if got := value(t, gather(t, m), "floodgate_connections_refused_total", reason); got != 0 {
		t.Fatalf("refused = %v before any source", got)
	}
	var n uint64 = 7
	m.SetRefusedConnectionsSource(func() uint64 { return n })
	if got := value(t, gather(t, m), "floodgate_connections_refused_total", reason); got != 7 {
		t.Fatalf("refused = %v, want 7", got)
	}
}

package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
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

package loadshed

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/trust"
)

func TestUntrustedHeaders(t *testing.T) {
	cfg := Default()
	cfg.Scoring.PriorityHeader = PriorityHeaderConfig{Name: "X-Priority", TrustedCIDRs: []string{"10.0.0.0/8"}}
	cfg.Chaos = ChaosConfig{Enabled: true, MinScore: 50, MaxScore: 100, Header: "X-Chaos", TrustedCIDRs: []string{"10.1.0.0/16"}}
	s, err := New(cfg, withManualTicks(time.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dropped := func(ip string) []string {
		var out []string
		a := netip.MustParseAddr(ip)
		s.UntrustedHeaders(trust.Identity{Peer: a, Client: a}, func(n string) { out = append(out, n) })
		return out
	}
	if got := dropped("203.0.113.1"); !slices.Equal(got, []string{"X-Priority", "X-Chaos"}) {
		t.Errorf("outsider: dropped %v", got)
	}
	if got := dropped("10.2.0.1"); !slices.Equal(got, []string{"X-Chaos"}) {
		t.Errorf("priority-trusted only: dropped %v", got)
	}
	if got := dropped("10.1.0.1"); len(got) != 0 {
		t.Errorf("trusted for both: dropped %v", got)
	}
}

package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

// readmeYAML returns the first yaml block of the README section headed
// title, so the examples the README shows are kept valid by this test.
func readmeYAML(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## "+title+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", title)
	}
	s = s[i+1:]
	if next := strings.Index(s, "\n## "); next >= 0 {
		s = s[:next]
	}
	start := strings.Index(s, "```yaml\n")
	if start < 0 {
		t.Fatalf("section %q has no yaml example", title)
	}
	s = s[start+len("```yaml\n"):]
	return s[:strings.Index(s, "```")]
}

func TestReadmeOriginGroupExampleLoads(t *testing.T) {
	cfg, err := Parse([]byte(readmeYAML(t, "Origin groups and failover")), "README")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.OriginGroups) != 1 {
		t.Fatalf("groups %+v", cfg.OriginGroups)
	}
	g := cfg.OriginGroups[0]
	f := g.Failover
	if g.Name != "api" || strings.Join(g.Origins, ",") != "api-east,api-west" || !g.CrossOriginRetries ||
		f.MaxOpenBreakerFraction != 0.5 || f.ShedAboveScore != 40 || f.FailbackAfter != 30*time.Second ||
		f.CheckInterval != time.Second {
		t.Errorf("group %+v", g)
	}
	if kind, opts, _ := cfg.Routes[0].EndpointKind(); kind != "origin_group" || opts != "api" {
		t.Errorf("route endpoint %s: %v", kind, opts)
	}
}

func TestReadmeOutlierExampleLoads(t *testing.T) {
	cfg, err := Parse([]byte(readmeYAML(t, "Outlier detection")), "README")
	if err != nil {
		t.Fatal(err)
	}
	od := cfg.Origins["users"].OutlierDetection
	if !od.Enabled || od.Consecutive5xx != 5 || od.MaxEjectionPercent != 50 || od.Latency.Factor != 3 ||
		od.SuccessRate.MinHosts != 5 || od.BaseEjectionTime != 30*time.Second {
		t.Errorf("outlier detection %+v", od)
	}
}

func TestOriginGroupErrorsNameKeyPaths(t *testing.T) {
	_, err := Parse([]byte(`
origins:
  east: {instances: [{address: "127.0.0.1:1"}]}
  west: {instances: [{address: "127.0.0.1:2"}]}
origin_groups:
  - {name: API, origins: [East, nowhere], failover: {check_interval: 1ms}}
  - {name: west, origins: [west]}
`), "test")
	for _, want := range []string{
		`origin_groups[0].origins[1]: unknown origin "nowhere"`,
		`origin_groups[0].failover.check_interval: must be at least 10ms`,
		`origin_groups[1].name: "west" is also an origin's name`,
		`origin_groups[1].origins: list at least two origins`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), `"east"`) {
		t.Errorf("names are case-insensitive, East is east: %v", err)
	}
}

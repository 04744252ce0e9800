package origins

import (
	"strings"
	"testing"
	"time"
)

func staticConfig(addrs ...string) OriginConfig {
	c := DefaultOriginConfig()
	for _, a := range addrs {
		c.Instances = append(c.Instances, InstanceConfig{Address: a})
	}
	return c
}

func TestDefaultConfigValidWithInstances(t *testing.T) {
	if err := staticConfig("127.0.0.1:1").Validate(); err != nil {
		t.Fatalf("defaults + one instance should validate: %v", err)
	}
	c := DefaultOriginConfig()
	cc := DefaultConsulConfig()
	cc.Service = "web"
	c.Consul = &cc
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults + consul should validate: %v", err)
	}
}

func TestValidateNamesFieldPaths(t *testing.T) {
	c := staticConfig("127.0.0.1:1", "nohost", "127.0.0.1:1")
	c.LB = "random"
	c.Timeouts.Connect = 0
	c.Breaker.FailureRatio = 1.5
	c.Breaker.HalfOpenMax = 0
	c.PanicThreshold = 120
	c.Retry.Attempts = 0
	c.Retry.OnStatuses = []int{503, 42}
	c.Retry.Budget.Window = time.Millisecond
	c.Hedge.Percentile = 100
	c.HealthCheck.Interval = time.Second
	c.HealthCheck.Path = "healthz"
	c.Latency.Decay = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("expected errors")
	}
	for _, want := range []string{
		"instances[1].address: must be host:port",
		"instances[2].address: duplicate address",
		"lb: must be",
		"timeouts.connect: must be positive",
		"breaker.failure_ratio: must be in [0, 1]",
		"breaker.half_open_max",
		"panic_threshold: must be a percentage",
		"retry.attempts",
		"retry.on_statuses[1]: not an HTTP status: 42",
		"retry.budget.window",
		"hedge.percentile",
		"health_check.path: must start with '/'",
		"latency.decay",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidateDiscoveryChoice(t *testing.T) {
	c := DefaultOriginConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "instances: at least one") {
		t.Fatalf("want missing-instances error, got %v", err)
	}
	c = staticConfig("127.0.0.1:1")
	c.Consul = &ConsulConfig{}
	err := c.Validate()
	for _, want := range []string{"instances: set either", "consul.address: required", "consul.service: required", "consul.wait"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestValidateOriginsPrefixesName(t *testing.T) {
	bad := staticConfig("127.0.0.1:1")
	bad.Timeouts.Response = -1
	err := ValidateOrigins(map[string]OriginConfig{"api": bad, "ok": staticConfig("127.0.0.1:2")})
	if err == nil || !strings.Contains(err.Error(), "api.timeouts.response: must be positive") {
		t.Fatalf("want prefixed path, got %v", err)
	}
	if strings.Contains(err.Error(), "ok.") {
		t.Fatalf("valid origin reported: %v", err)
	}
}

func TestZeroConfigFailsLoudly(t *testing.T) {
	c := OriginConfig{Instances: []InstanceConfig{{Address: "127.0.0.1:1"}}}
	if err := c.Validate(); err == nil {
		t.Fatal("a zero config (decoded without defaults) must not validate")
	}
}

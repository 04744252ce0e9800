package ratelimit

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cfg := Config{Policies: []Policy{
		{Name: "ok", Rate: 1.5, Key: []string{"client_ip", "header:X-Api-Key", "ROUTE"}},
		{Name: "ok", Rate: 0},
		{Name: "", Rate: 1, Burst: -1, Key: []string{"cookie"}, MaxKeys: -1, IPv6Prefix: 129},
		{Name: "bad hdr", Rate: 1, Key: []string{"header:Bad Name"}, OverflowRate: -1},
	}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{
		`policies[1].name: "ok" is already defined by policies[0]`,
		"policies[1].rate: must be a positive number",
		"policies[2].name: must not be empty",
		"policies[2].burst: must not be negative",
		`policies[2].key[0]: unknown key part "cookie"`,
		"policies[2].max_keys: must not be negative",
		"policies[2].ipv6_prefix: must be between 1 and 128",
		"policies[3].name: must not contain spaces",
		`policies[3].key[0]: "Bad Name" is not a valid header name`,
		"policies[3].overflow_rate: must not be negative",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "policies[0]") && !strings.Contains(err.Error(), "by policies[0]") {
		t.Errorf("valid policy reported: %v", err)
	}
	if err := (Policy{Name: "p", Rate: 1}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Policy{Name: "p"}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "rate: ") {
		t.Fatalf("policy error %v, want a field path relative to the policy", err)
	}
}

func TestDefaults(t *testing.T) {
	p := Policy{Name: "p", Rate: 2.5}.WithDefaults()
	if p.Burst != 3 || p.MaxKeys != DefaultMaxKeys || p.IdleTimeout != DefaultIdleTimeout ||
		p.OverflowRate != 2.5 || p.OverflowBurst != 3 || p.IPv6Prefix != 64 || p.Key[0] != "client_ip" {
		t.Fatalf("defaults %+v", p)
	}
}

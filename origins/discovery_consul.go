package origins

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

// ConsulConfig selects the passing instances of a Consul service.
type ConsulConfig struct {
	// Address of the Consul agent: host:port or http(s)://host:port.
	Address    string `mapstructure:"address"`
	Service    string `mapstructure:"service"`
	Tag        string `mapstructure:"tag"`
	Datacenter string `mapstructure:"datacenter"`
	Token      string `mapstructure:"token"`
	// AllowEmpty applies an answer with no passing instances. By default a
	// sudden drop to zero (an ACL mistake filtering everything out, every
	// check flapping at once) keeps the last non-empty set instead, with a
	// warning and floodgate_discovery_empty_kept_total, because an origin
	// with no instances fails every request while a stale set usually
	// still works.
	AllowEmpty bool `mapstructure:"allow_empty"`
	// Wait is the blocking-query wait time sent to Consul (Consul caps it at 10m).
	Wait time.Duration `mapstructure:"wait"`
	// BackoffMin and BackoffMax bound the jittered exponential backoff after errors.
	BackoffMin time.Duration `mapstructure:"backoff_min"`
	BackoffMax time.Duration `mapstructure:"backoff_max"`
}

// DefaultConsulConfig returns the Consul defaults; Service must still be set.
func DefaultConsulConfig() ConsulConfig {
	return ConsulConfig{
		Address:    "127.0.0.1:8500",
		Wait:       55 * time.Second,
		BackoffMin: 250 * time.Millisecond,
		BackoffMax: 30 * time.Second,
	}
}

// consulSource follows a Consul service with a ConsulWatcher.
var consulSource = &discoverySource{
	name: "consul",
	key:  "consul",
	options: func(cfg OriginConfig) any {
		if cfg.Consul == nil {
			return nil
		}
		return *cfg.Consul
	},
	decode: func(raw any, cfg *OriginConfig) error {
		cc := DefaultConsulConfig()
		if err := decode.Decode(raw, &cc); err != nil {
			return err
		}
		cfg.Consul = &cc
		return nil
	},
	validate: func(opts any, fe *decode.Errors, at string) {
		c := opts.(ConsulConfig)
		c.validate(fe, at)
	},
	start: func(opts any, o *Origin, env discoveryEnv) (func(context.Context), error) {
		w, err := NewConsulWatcher(opts.(ConsulConfig), env.log, o.SetInstances)
		if err != nil {
			return nil, err
		}
		w.Current = func() int { return len(o.Instances()) }
		if hook := env.hooks.OnDiscoveryEmptyKept; hook != nil {
			w.OnEmptyKept = func() { hook(o.name) }
		}
		return w.Run, nil
	},
}

func (c *ConsulConfig) validate(fe *decode.Errors, p string) {
	if c.Address == "" {
		fe.Add(p+".address", "required")
	} else if strings.Contains(c.Address, "://") {
		u, err := url.Parse(c.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fe.Add(p+".address", "must be host:port or http(s)://host:port, got %q", c.Address)
		}
	} else if err := validateHostPort(c.Address); err != nil {
		fe.Add(p+".address", "%v", err)
	}
	if c.Service == "" {
		fe.Add(p+".service", "required")
	} else if strings.ContainsAny(c.Service, "/?#") {
		fe.Add(p+".service", "invalid service name %q", c.Service)
	}
	if c.Wait <= 0 || c.Wait > 10*time.Minute {
		fe.Add(p+".wait", "must be in (0, 10m], got %v", c.Wait)
	}
	if c.BackoffMin <= 0 {
		fe.Add(p+".backoff_min", "must be positive")
	}
	if c.BackoffMax < c.BackoffMin {
		fe.Add(p+".backoff_max", "must be >= backoff_min")
	}
}

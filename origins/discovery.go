package origins

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/floodgate-dev/floodgate/decode"
)

// A discoverySource is one way an origin learns its instances, selected by
// the origin's YAML key of the same name (instances: is static, consul: is
// Consul). It owns its options, their validation and the watcher that
// feeds Origin.SetInstances; the registry starts, stops and restarts it
// without knowing the kind. Adding one is a new file with its source and
// one registerDiscoverySource line in this file's init.
type discoverySource struct {
	// name identifies the kind in messages ("static", "consul").
	name string
	// key is the origin's YAML key that selects the source and holds its
	// options.
	key string
	// options returns cfg's settings for this source, nil when cfg does not
	// use it. Its %+v identifies the settings: a change restarts the
	// watcher. Nil means cfg.Discovery[key], where decode leaves them.
	options func(cfg OriginConfig) any
	// decode decodes the key's YAML value (over the source's defaults) into
	// cfg. Nil when OriginConfig decodes the key itself (instances).
	decode func(raw any, cfg *OriginConfig) error
	// validate records every problem of opts under the key path at.
	validate func(opts any, fe *decode.Errors, at string)
	// start begins feeding o from opts. It returns the watcher to run in
	// the background until its context ends, or nil when it has applied
	// the instances once.
	start func(opts any, o *Origin, env discoveryEnv) (func(context.Context), error)
}

// discoveryEnv is what a source's watcher may use besides its options.
type discoveryEnv struct {
	log   *slog.Logger // already carries the origin's name
	hooks Hooks
}

// discoverySources is the registry, in registration order: the first is
// where "no source set" is reported.
var discoverySources []*discoverySource

func registerDiscoverySource(s *discoverySource) {
	for _, old := range discoverySources {
		if old.name == s.name || old.key == s.key {
			panic(fmt.Sprintf("origins: discovery source %q (key %q) registered twice", s.name, s.key))
		}
	}
	discoverySources = append(discoverySources, s)
}

func init() {
	registerDiscoverySource(staticSource)
	registerDiscoverySource(consulSource)
}

// optionsOf returns s's settings in cfg, nil when cfg does not use s.
func (s *discoverySource) optionsOf(cfg OriginConfig) any {
	if s.options != nil {
		return s.options(cfg)
	}
	return cfg.Discovery[s.key]
}

// discoverySourceByKey returns the source selected by the YAML key k.
func discoverySourceByKey(k string) *discoverySource {
	for _, s := range discoverySources {
		if strings.EqualFold(s.key, k) {
			return s
		}
	}
	return nil
}

// discoveryOf returns the source cfg uses and its settings; nil when cfg
// (not validated) uses none or several.
func discoveryOf(cfg OriginConfig) (*discoverySource, any) {
	var found *discoverySource
	var opts any
	for _, s := range discoverySources {
		if o := s.optionsOf(cfg); o != nil {
			if found != nil {
				return nil, nil
			}
			found, opts = s, o
		}
	}
	return found, opts
}

// discoveryKey identifies an origin's discovery setting; a change restarts
// its watcher.
func discoveryKey(cfg OriginConfig) string {
	s, opts := discoveryOf(cfg)
	if s == nil {
		return ""
	}
	return s.name + fmt.Sprintf(" %+v", opts)
}

// validateDiscovery checks that cfg uses exactly one source and that
// source's settings.
func validateDiscovery(cfg OriginConfig, fe *decode.Errors) {
	var using []string
	for _, s := range discoverySources {
		if opts := s.optionsOf(cfg); opts != nil {
			using = append(using, s.key)
			s.validate(opts, fe, s.key)
		}
	}
	switch {
	case len(using) == 0:
		others := make([]string, 0, len(discoverySources)-1)
		for _, s := range discoverySources[1:] {
			others = append(others, s.key)
		}
		fe.Add(discoverySources[0].key, "at least one instance is required unless %s is set", strings.Join(others, " or "))
	case len(using) > 1:
		fe.Add(using[0], "set either %s, not both", strings.Join(using, " or "))
	}
}

// staticSource is the instances: list, applied as it is.
var staticSource = &discoverySource{
	name: "static",
	key:  "instances",
	options: func(cfg OriginConfig) any {
		if len(cfg.Instances) == 0 {
			return nil
		}
		return cfg.Instances
	},
	validate: func(opts any, fe *decode.Errors, at string) {
		list := opts.([]InstanceConfig)
		seen := make(map[string]bool, len(list))
		for i, in := range list {
			p := at + "[" + strconv.Itoa(i) + "]"
			if err := validateHostPort(in.Address); err != nil {
				fe.Add(p+".address", "%v", err)
			} else if seen[in.Address] {
				fe.Add(p+".address", "duplicate address %q", in.Address)
			}
			seen[in.Address] = true
			if in.Weight < 0 || in.Weight > 10000 {
				fe.Add(p+".weight", "must be between 0 and 10000, got %d", in.Weight)
			}
		}
	},
	start: func(opts any, o *Origin, _ discoveryEnv) (func(context.Context), error) {
		o.SetInstances(opts.([]InstanceConfig))
		return nil, nil
	},
}

// setDiscovery stores opts as the options of the source with key, for a
// source's decode that has no OriginConfig field of its own.
func (c *OriginConfig) setDiscovery(key string, opts any) {
	m := make(map[string]any, len(c.Discovery)+1)
	for k, v := range c.Discovery {
		m[k] = v
	}
	m[key] = opts
	c.Discovery = m
}

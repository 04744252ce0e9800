package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/timeseries"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default config file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// EmbeddedSource is Config.Source for the embedded default.
const EmbeddedSource = "embedded default"

// EnvPrefix prefixes environment overrides: FLOODGATE_SERVER_LISTEN
// overrides server.listen.
const EnvPrefix = "FLOODGATE"

// Load reads the config at path, or the embedded default when path is
// empty, applies environment overrides and validates it.
func Load(path string) (*Config, error) {
	if path == "" {
		return Parse(defaultYAML, EmbeddedSource)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes YAML, applies the process's FLOODGATE_* environment
// overrides, fills defaults and validates.
func Parse(data []byte, source string) (*Config, error) {
	return ParseWithEnv(data, source, os.Environ())
}

// ParseWithEnv is Parse with the environment given as KEY=value pairs.
func ParseWithEnv(data []byte, source string, environ []string) (*Config, error) {
	cfg, err := parse(data, source, environ)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadForCheck is Load for a config checker: a config that decodes but
// breaks validation rules is returned with its error, so the checker can
// also build it and report the runtime's problems (unknown filters, bad
// endpoint options) in the same list. It is nil only when the file cannot
// be read or decoded.
func LoadForCheck(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parse(data, path, os.Environ())
}

func parse(data []byte, source string, environ []string) (*Config, error) {
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil, fmt.Errorf("%s: parsing YAML: %w", source, err)
	}
	if tree == nil {
		tree = map[string]any{}
	}
	decode.EnvOverrides(tree, reflect.TypeFor[Config](), EnvPrefix, environ)
	cfg := Default()
	cfg.Source = source
	var errs decode.Errors
	claimed := map[string]bool{}
	for _, s := range sections() {
		key, raw := lookup(tree, s.key)
		claimed[key] = true
		if raw == nil {
			continue
		}
		errs.Merge("", s.decode(cfg, s.key, raw))
	}
	for _, key := range slices.Sorted(maps.Keys(tree)) {
		if claimed[key] {
			continue
		}
		var b BuiltinFilter
		if err := decode.Decode(tree[key], &b); err != nil {
			errs.Add(key, "unknown section (sections: %s; a built-in filter's section takes enabled and options)", sectionKeys())
			continue
		}
		if cfg.Builtins == nil {
			cfg.Builtins = map[string]BuiltinFilter{}
		}
		cfg.Builtins[key] = b
	}
	if err := errs.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", source, err)
	}
	return cfg, nil
}

// section is one top-level key of the config and the code that decodes it
// into the Config, over the defaults already there. Validation runs once
// every section is decoded (Config.Validate), so rules that span sections
// see them all.
type section struct {
	key    string
	decode func(c *Config, at string, raw any) error
}

// sections lists the config's sections. Keys not listed are built-in
// filter sections (see Config.Builtins).
func sections() []section {
	over := func(field func(c *Config) any) func(*Config, string, any) error {
		return func(c *Config, at string, raw any) error { return decode.Prefix(at, decode.Decode(raw, field(c))) }
	}
	return []section{
		{"server", over(func(c *Config) any { return &c.Server })},
		{"admin", over(func(c *Config) any { return &c.Admin })},
		{"filters", over(func(c *Config) any { return &c.Filters })},
		{"routes", over(func(c *Config) any { return &c.Routes })},
		{"origins", func(c *Config, at string, raw any) (err error) {
			c.Origins, err = origins.DecodeOrigins(at, raw)
			return err
		}},
		{"origin_groups", func(c *Config, at string, raw any) (err error) {
			c.OriginGroups, err = origins.DecodeGroups(at, raw)
			return err
		}},
		{"loadshed", over(func(c *Config) any { return &c.LoadShed })},
		{"rate_limit", over(func(c *Config) any { return &c.RateLimit })},
		{"timeseries", func(c *Config, at string, raw any) error {
			var e decode.Errors
			m, ok := raw.(map[string]any)
			if !ok {
				e.Add(at, "must be a map")
				return e.Err()
			}
			rest := make(map[string]any, len(m))
			for k, v := range m {
				if strings.EqualFold(k, "data_dir") {
					e.Merge(at+".data_dir", decode.Decode(v, &c.TimeSeries.DataDir))
					continue
				}
				rest[k] = v
			}
			store, err := timeseries.DecodeConfig(rest)
			e.Merge(at, err)
			c.TimeSeries.Store = store
			return e.Err()
		}},
	}
}

func sectionKeys() string {
	var keys []string
	for _, s := range sections() {
		keys = append(keys, s.key)
	}
	return strings.Join(keys, ", ")
}

// lookup finds a top-level key as YAML spelled it (struct keys match
// case-insensitively, as everywhere in the config).
func lookup(tree map[string]any, key string) (string, any) {
	if v, ok := tree[key]; ok {
		return key, v
	}
	for k, v := range tree {
		if strings.EqualFold(k, key) {
			return k, v
		}
	}
	return key, nil
}

package timeseries

import (
	"go.yaml.in/yaml/v3"

	confkit "github.com/floodgate-dev/floodgate/decode"
)

// ParseConfigYAML decodes a YAML document shaped like Config (snake_case keys, durations such
// as "250ms"), applies defaults and validates. Unknown keys are errors.
//
// It reads the YAML as written: namespace names and index field names (e.g. "deviceType")
// are case-sensitive.
func ParseConfigYAML(data []byte) (Config, error) {
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return Config{}, err
	}
	return DecodeConfig(tree)
}

// DecodeConfig decodes an already-parsed tree (keys in their original case) into a Config
// with the shared decode toolkit (units, unknown keys rejected, every problem with its key
// path), applies defaults and validates.
func DecodeConfig(tree map[string]any) (Config, error) {
	var cfg Config
	if err := confkit.Decode(tree, &cfg); err != nil {
		return cfg, err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, confkit.Prefix("", err)
	}
	return cfg, nil
}

package timeseries

import (
	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

// ParseConfigYAML decodes a YAML document shaped like Config (snake_case keys, durations such
// as "250ms"), applies defaults and validates. Unknown keys are errors.
//
// It decodes with yaml + mapstructure rather than viper on purpose: viper lower-cases map
// keys, and namespace names and index field names (e.g. "deviceType") are case-sensitive.
func ParseConfigYAML(data []byte) (Config, error) {
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return Config{}, err
	}
	return DecodeConfig(tree)
}

// DecodeConfig decodes an already-parsed tree (keys in their original case) into a Config,
// applies defaults and validates.
func DecodeConfig(tree map[string]any) (Config, error) {
	var cfg Config
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      &cfg,
		ErrorUnused: true,
		DecodeHook:  mapstructure.StringToTimeDurationHookFunc(),
	})
	if err != nil {
		return cfg, err
	}
	if err := dec.Decode(tree); err != nil {
		return cfg, err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/loadshed"
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

// Parse decodes YAML, applies FLOODGATE_* environment overrides for the
// schema's scalar keys, fills defaults and validates.
func Parse(data []byte, source string) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%s: parsing YAML: %w", source, err)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, key := range envKeys(reflect.TypeOf(Config{}), "") {
		if err := v.BindEnv(key); err != nil {
			return nil, err
		}
	}
	cfg := Default()
	if err := decode.Decode(v.AllSettings(), cfg); err != nil {
		return nil, fmt.Errorf("%s: %s", source, strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " "))
	}
	cfg.Source = source
	if err := cfg.decodeOrigins(); err != nil {
		return nil, err
	}
	if err := cfg.decodeTimeSeries(data); err != nil {
		return nil, err
	}
	cfg.LoadShed = loadshed.Default()
	if err := decode.Decode(cfg.LoadShedRaw, &cfg.LoadShed); err != nil {
		return nil, &ValidationError{Problems: []string{"loadshed: " + strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")}}
	}
	cfg.normalizeNames()
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeOrigins decodes each origin over the origins package's defaults;
// decoding the whole map at once would leave omitted keys at zero.
func (c *Config) decodeOrigins() error {
	c.Origins = make(map[string]origins.OriginConfig, len(c.OriginsRaw))
	var p problems
	for _, name := range sortedKeys(c.OriginsRaw) {
		oc := origins.DefaultOriginConfig()
		raw, ok := c.OriginsRaw[name].(map[string]any)
		if !ok {
			p.add("origins."+name, "must be a map of origin settings")
			continue
		}
		if _, ok := raw["consul"]; ok {
			cc := origins.DefaultConsulConfig()
			oc.Consul = &cc
		}
		if err := decode.Decode(raw, &oc); err != nil {
			p.add("origins."+name, "%s", strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " "))
			continue
		}
		c.Origins[name] = oc
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

// decodeTimeSeries decodes the timeseries section from the YAML as written,
// keeping the case of namespace and index field names.
func (c *Config) decodeTimeSeries(data []byte) error {
	c.TimeSeries.Rest = nil
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: parsing YAML: %w", c.Source, err)
	}
	section, ok := doc["timeseries"].(map[string]any)
	if !ok {
		return nil
	}
	tree := make(map[string]any, len(section))
	for k, v := range section {
		if k != "data_dir" {
			tree[k] = v
		}
	}
	store, err := timeseries.DecodeConfig(tree)
	if err != nil {
		var p problems
		for _, line := range strings.Split(err.Error(), "\n") {
			p = append(p, "timeseries."+strings.Join(strings.Fields(line), " "))
		}
		return &ValidationError{Problems: p}
	}
	c.TimeSeries.Store = store
	return nil
}

// normalizeNames lower-cases origin references: viper lower-cases map keys,
// so "origins: {Users: ...}" arrives as "users" and a route naming "Users"
// must find it.
func (c *Config) normalizeNames() {
	for i := range c.Routes {
		c.Routes[i].Origin = strings.ToLower(c.Routes[i].Origin)
	}
}

// envKeys lists the dotted keys of every scalar field reachable through
// nested structs (not through slices or maps, which an environment
// variable can't address). viper only consults the environment for keys it
// knows, so each is bound explicitly.
func envKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		ft := f.Type
		switch ft.Kind() {
		case reflect.Struct:
			keys = append(keys, envKeys(ft, key)...)
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

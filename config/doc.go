// Package config owns Floodgate's configuration: the typed schema and its
// defaults, loading YAML through viper with FLOODGATE_* environment
// overrides, validation whose errors name the key path and the rule broken,
// the embedded default config, and watching the file for live reload.
//
// A loaded Config is treated as immutable: reloading produces a new value
// that the gateway swaps in atomically, so a request always sees one
// consistent config.
package config

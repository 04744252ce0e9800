package main

import (
	"fmt"
	"os"

	"github.com/floodgate-dev/floodgate/timeseries"
)

// loadConfig reads the store's YAML config file (see timeseries/README.md).
func loadConfig(path string) (timeseries.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return timeseries.Config{}, fmt.Errorf("namespaces file: %w", err)
	}
	cfg, err := timeseries.ParseConfigYAML(raw)
	if err != nil {
		return cfg, fmt.Errorf("namespaces file %s: %w", path, err)
	}
	return cfg, nil
}

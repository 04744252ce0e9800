package config

import (
	"context"
	"time"

	"github.com/floodgate-dev/floodgate/filewatch"
)

// WatchDebounce is how long the watcher waits after the last file event
// before reloading; editors and config-map updates write a file in several
// steps and reloading half-way would read a truncated file.
const WatchDebounce = 100 * time.Millisecond

// Watch calls onChange after the file at path changes, until ctx ends. It
// watches the file's directory rather than the file (see filewatch.Watch),
// because editors and Kubernetes config maps replace the file instead of
// writing it in place.
func Watch(ctx context.Context, path string, onChange func()) error {
	_, err := filewatch.Watch(ctx, []string{path}, WatchDebounce, onChange)
	return err
}

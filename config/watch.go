package config

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchDebounce is how long the watcher waits after the last file event
// before reloading; editors and config-map updates write a file in several
// steps and reloading half-way would read a truncated file.
const WatchDebounce = 100 * time.Millisecond

// Watch calls onChange after the file at path changes, until ctx ends. It
// watches the file's directory rather than the file, because editors and
// Kubernetes config maps replace the file (rename or symlink swap) instead
// of writing it in place, which drops a watch on the file itself.
func Watch(ctx context.Context, path string, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		w.Close()
		return err
	}
	dir, base := filepath.Split(abs)
	if err := w.Add(dir); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Base(ev.Name)
				// "..data" is the symlink a Kubernetes config map swaps.
				if name == base || name == "..data" {
					timer.Reset(WatchDebounce)
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			case <-timer.C:
				onChange()
			}
		}
	}()
	return nil
}

// Package filewatch owns the gateway's one way of noticing that files it
// loaded have changed (the config file, TLS certificates and keys): fsnotify
// on the files' directories, with a debounce so a file written in several
// steps is read once, whole.
package filewatch

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// kubernetesDataLink is the symlink a Kubernetes config map or secret
// volume swaps to replace all its files at once.
const kubernetesDataLink = "..data"

// Watch calls onChange once debounce has passed after the last event on
// any of paths, until ctx ends or the returned stop is called (stop also
// waits for a running onChange to return). It watches the files'
// directories rather than the files, because editors, config management and
// Kubernetes replace a file (rename or symlink swap) instead of writing it
// in place, which drops a watch on the file itself.
func Watch(ctx context.Context, paths []string, debounce time.Duration, onChange func()) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	names := map[string]bool{kubernetesDataLink: true}
	dirs := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			w.Close()
			return nil, err
		}
		dir, base := filepath.Split(abs)
		names[base] = true
		if !dirs[dir] {
			if err := w.Add(dir); err != nil {
				w.Close()
				return nil, err
			}
			dirs[dir] = true
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
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
				if names[filepath.Base(ev.Name)] {
					timer.Reset(debounce)
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
	return func() { cancel(); wg.Wait() }, nil
}

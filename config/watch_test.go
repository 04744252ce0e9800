package config

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

const watchWait = 5 * time.Second

// startWatch watches path and returns a channel that receives one value per
// onChange call.
func startWatch(t *testing.T, ctx context.Context, path string) <-chan struct{} {
	t.Helper()
	changes := make(chan struct{}, 16)
	if err := Watch(ctx, path, func() { changes <- struct{}{} }); err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return changes
}

func awaitChange(t *testing.T, changes <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changes:
	case <-time.After(watchWait):
		t.Fatalf("no reload within %v after %s", watchWait, what)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchInPlaceWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, "a: 1\n")
	changes := startWatch(t, ctx, path)

	writeFile(t, path, "a: 2\n")
	awaitChange(t, changes, "an in-place write")

	// A second edit is seen too: the watch survives its first event.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("b: 3\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	awaitChange(t, changes, "an append")
}

func TestWatchAtomicReplace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "floodgate.yaml")
	writeFile(t, path, "a: 1\n")
	changes := startWatch(t, ctx, path)

	// Editors and deploy tools write a temporary file and rename it over
	// the config; a watch on the file's inode would miss every later edit.
	for i := 0; i < 3; i++ {
		tmp := filepath.Join(dir, ".floodgate.yaml.tmp")
		writeFile(t, tmp, "a: 2\n")
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		awaitChange(t, changes, "a rename over the file")
	}
}

func TestWatchCreatesAfterRemove(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, "a: 1\n")
	changes := startWatch(t, ctx, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	awaitChange(t, changes, "removing the file")
	writeFile(t, path, "a: 2\n")
	awaitChange(t, changes, "re-creating the file")
}

// TestWatchConfigMapSwap follows a Kubernetes config map update: the file
// is a symlink through "..data", which is swapped atomically to a new
// timestamped directory.
func TestWatchConfigMapSwap(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	mustMkdir := func(name string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustMkdir("..v1")
	writeFile(t, filepath.Join(dir, "..v1", "floodgate.yaml"), "a: 1\n")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "floodgate.yaml")
	if err := os.Symlink(filepath.Join("..data", "floodgate.yaml"), path); err != nil {
		t.Fatal(err)
	}
	changes := startWatch(t, ctx, path)

	mustMkdir("..v2")
	writeFile(t, filepath.Join(dir, "..v2", "floodgate.yaml"), "a: 2\n")
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	awaitChange(t, changes, "swapping ..data")
	if b, err := os.ReadFile(path); err != nil || string(b) != "a: 2\n" {
		t.Fatalf("read %q, %v", b, err)
	}
}

func TestWatchDebouncesBurst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, "a: 0\n")
	changes := startWatch(t, ctx, path)

	// One save that writes in several steps is one reload: the writes
	// below follow each other far faster than WatchDebounce.
	start := time.Now()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := f.WriteString("k: v\n"); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	burst := time.Since(start)
	awaitChange(t, changes, "a burst of writes")
	if burst > WatchDebounce/2 {
		// A starved machine spread the writes out; then two reloads are
		// correct behaviour and there is nothing to assert.
		t.Skipf("the burst took %v, too long to test debouncing", burst)
	}
	// Absence can only be checked by waiting; a few debounce periods is
	// long enough for a second timer to have fired.
	select {
	case <-changes:
		t.Fatal("a burst of writes caused more than one reload")
	case <-time.After(3 * WatchDebounce):
	}
}

func TestWatchIgnoresOtherFiles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "floodgate.yaml")
	writeFile(t, path, "a: 1\n")
	changes := startWatch(t, ctx, path)

	writeFile(t, filepath.Join(dir, "other.yaml"), "x")
	writeFile(t, filepath.Join(dir, "floodgate.yaml.bak"), "x")
	select {
	case <-changes:
		t.Fatal("a write to another file in the directory caused a reload")
	case <-time.After(3 * WatchDebounce):
	}
	writeFile(t, path, "a: 2\n")
	awaitChange(t, changes, "writing the watched file")
}

func TestWatchMissingDirectory(t *testing.T) {
	err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope", "floodgate.yaml"), func() {})
	if err == nil {
		t.Fatal("watching a missing directory succeeded")
	}
}

func TestWatchStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, "a: 1\n")
	changes := startWatch(t, ctx, path)
	writeFile(t, path, "a: 2\n")
	awaitChange(t, changes, "a write")
	cancel()
	// goleak.VerifyNone retries until the watcher goroutine and fsnotify's
	// reader have exited, or fails naming them.
}

package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// Files in two directories, replaced by rename (as config management
// does): a burst of writes to both is one call, and a later change is
// another.
func TestWatchDebouncesReplacedFiles(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	certFile, keyFile := filepath.Join(a, "tls.crt"), filepath.Join(b, "tls.key")
	for _, p := range []string{certFile, keyFile} {
		if err := os.WriteFile(p, []byte("v1"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	calls := make(chan struct{}, 10)
	stop, err := Watch(context.Background(), []string{certFile, keyFile}, 50*time.Millisecond, func() { calls <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	replace := func(p string) {
		if err := os.WriteFile(p+".tmp", []byte("v2"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	replace(certFile)
	replace(keyFile)
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no call after the files changed")
	}
	replace(certFile)
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no call after the second change")
	}
	if n := len(calls); n != 0 {
		t.Fatalf("%d extra calls: a burst of writes was not debounced", n)
	}
}

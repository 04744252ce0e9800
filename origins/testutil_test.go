package origins

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/syncbuf"
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer = syncbuf.Buffer

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testOrigin builds a standalone origin (no registry, no goroutines).
func testOrigin(t *testing.T, cfg OriginConfig, log *slog.Logger) *Origin {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	if log == nil {
		log = discardLogger()
	}
	o := newOrigin("test", cfg, log, Hooks{})
	o.SetInstances(cfg.Instances)
	return o
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func byAddr(o *Origin, addr string) *Instance { return o.snap.Load().byAddr[addr] }

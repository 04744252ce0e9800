package syncbuf

import (
	"strings"
	"sync"
	"testing"

	"github.com/floodgate-dev/floodgate/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// TestConcurrentWritesAllKept writes from several goroutines while reading;
// under -race a missing lock fails, and every write must be kept whole.
func TestConcurrentWritesAllKept(t *testing.T) {
	var buf Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = buf.Write([]byte("line\n"))
				_ = buf.String()
			}
		}()
	}
	wg.Wait()
	if got := strings.Count(buf.String(), "line\n"); got != 400 {
		t.Fatalf("got %d lines, want 400", got)
	}
}

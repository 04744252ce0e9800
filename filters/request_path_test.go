package filters

import (
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/internal/racebuild"
)

// SetPath copies: the raw bytes (fasthttp's request buffer, reused for the
// connection's next request) may change under it without changing Path.
func TestSetPathCopiesTheRawPath(t *testing.T) {
	c := AcquireContext()
	defer c.Release()
	raw := []byte("/orders/42")
	c.SetPath(raw)
	copy(raw, "/xxxxxx/xx")
	if c.Path != "/orders/42" {
		t.Fatalf("Path %q changed with the raw bytes", c.Path)
	}
	c2 := AcquireContext()
	defer c2.Release()
	c2.SetPath(nil)
	if c2.Path != "" {
		t.Fatalf("empty raw path gave %q", c2.Path)
	}
}

// A pooled Context sets a path without allocating once its buffer has
// grown to the path's length.
func TestSetPathDoesNotAllocate(t *testing.T) {
	if racebuild.Enabled {
		t.Skip("the race detector's pool drops Contexts at random")
	}
	raw := []byte("/api/v1/orders/12345/items")
	allocs := testing.AllocsPerRun(200, func() {
		c := AcquireContext()
		c.SetPath(raw)
		c.Release()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per SetPath, want 0", allocs)
	}
}

// Path, and what the route's rewrite derived from it without a copy
// (UpstreamPath as a suffix of Path), are views of the Context's buffer: a
// race-detector build overwrites the buffer on release, so a component that
// keeps either past its request without strings.Clone reads an obviously
// wrong path in CI instead of, silently, the next request's. A clone keeps
// its value, a long path's buffer (not kept for the next request) included.
func TestReleasedPathIsPoisonedUnderRace(t *testing.T) {
	for _, raw := range []string{"/svc/orders/42", "/svc/" + strings.Repeat("p", maxKeptPathBuf)} {
		c := AcquireContext()
		c.SetPath([]byte(raw))
		c.UpstreamPath = c.Path[len("/svc"):] // as a strip_prefix rewrite leaves it
		keptPath, keptUpstream := c.Path, c.UpstreamPath
		cloned := strings.Clone(c.Path)
		c.Release()
		if cloned != raw {
			t.Fatalf("clone %q changed on release", cloned[:min(len(cloned), 20)])
		}
		if !racebuild.Enabled {
			continue
		}
		if keptPath != strings.Repeat("!", len(raw)) || keptUpstream != strings.Repeat("!", len(raw)-len("/svc")) {
			t.Fatalf("a path kept past release reads %q / %q, want it poisoned",
				keptPath[:min(len(keptPath), 20)], keptUpstream[:min(len(keptUpstream), 20)])
		}
	}
}

// One long path must not pin its buffer in the pool: the Context drops a
// buffer over maxKeptPathBuf on release and keeps a common one.
func TestLongPathBufferIsNotKept(t *testing.T) {
	c := AcquireContext()
	c.SetPath([]byte("/" + strings.Repeat("a", maxKeptPathBuf)))
	c.reset()
	if c.pathBuf != nil {
		t.Fatalf("a %d-byte path buffer was kept", cap(c.pathBuf))
	}
	c.SetPath([]byte("/short"))
	c.reset()
	if cap(c.pathBuf) == 0 {
		t.Fatal("a short path's buffer was dropped; the next request would allocate")
	}
	c.refs.Store(1)
	c.Release()
}

package filters

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/routing"
	"github.com/floodgate-dev/floodgate/trust"
)

func TestAcquireContextIsFresh(t *testing.T) {
	c := AcquireContext()
	defer c.Release()
	if c.Priority != Unscored || c.Start.IsZero() || c.Responded() || c.Request != nil || len(c.Passport()) != 0 {
		t.Fatalf("fresh context %+v", c)
	}
}

func TestReleaseRunsHooksOnceAfterLastRelease(t *testing.T) {
	c := AcquireContext()
	c.Status = http.StatusOK
	calls := 0
	var sawStatus int
	var sawEnd time.Time
	c.OnDone(func(c *Context) {
		calls++
		sawStatus = c.Status
		sawEnd = c.End
	})
	order := []int{}
	c.OnDone(func(*Context) { order = append(order, 1) })
	c.OnDone(func(*Context) { order = append(order, 2) })

	c.Retain() // a streaming body still needs c after the handler returns
	c.Retain()
	c.Release() // the handler's reference
	if calls != 0 {
		t.Fatal("hooks ran while references were held")
	}
	c.Release()
	if calls != 0 {
		t.Fatal("hooks ran while a reference was held")
	}
	c.Release() // the last one
	if calls != 1 {
		t.Fatalf("hooks ran %d times, want 1", calls)
	}
	if sawStatus != http.StatusOK || sawEnd.IsZero() {
		t.Fatalf("hook saw status %d end %v; hooks must run before the reset", sawStatus, sawEnd)
	}
	if len(order) != 2 || order[0] != 1 || order[1] != 2 {
		t.Fatalf("hooks ran in order %v", order)
	}
}

func TestReleaseKeepsExplicitEnd(t *testing.T) {
	c := AcquireContext()
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.End = end
	var saw time.Time
	c.OnDone(func(c *Context) { saw = c.End })
	c.Release()
	if !saw.Equal(end) {
		t.Fatalf("End = %v, want the one set by the gateway", saw)
	}
}

func TestReleaseTooOftenPanics(t *testing.T) {
	c := AcquireContext()
	c.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("an extra Release did not panic")
		}
		c.refs.Store(0)
	}()
	c.Release()
}

var (
	userKey  = NewKey[string]("user")
	countKey = NewKey[int]("count")
)

func TestResetClearsEverything(t *testing.T) {
	c := AcquireContext()
	c.Request = new(fasthttp.RequestCtx)
	tab, err := routing.Compile([]routing.Spec{{Name: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Route = tab.Routes()[0]
	c.Path, c.UpstreamPath, c.Method, c.Host = "/a", "/b", "GET", "h"
	{
		ip := netip.MustParseAddr("10.0.0.1")
		c.SetIdentity(trust.Identity{Peer: ip, Client: ip})
	}
	c.RequestID = "id"
	c.Priority = 42
	c.Respond(http.StatusTooManyRequests, CategoryRateLimited, "slow")
	c.Err = errors.New("x")
	c.Origin, c.Instance = "o", "i:1"
	c.Attempts = append(c.Attempts, Attempt{Instance: "i:1", Status: 502}, Attempt{Instance: "i:2", Retry: true})
	c.EndpointStart, c.End = time.Now(), time.Now()
	c.BytesIn, c.BytesOut = 10, 20
	c.Log("event")
	userKey.Set(c, "alice")
	countKey.Set(c, 3)
	c.SetResponseHeader("X-A", "1")
	hookRan := false
	c.OnDone(func(*Context) { hookRan = true })
	c.finish()
	if !hookRan {
		t.Fatal("finish did not run the hook")
	}

	c.reset()
	zero := Context{Priority: Unscored}
	if c.Request != nil || c.Route != nil || c.Path != "" || c.UpstreamPath != "" || c.Method != "" || c.Host != "" ||
		c.ClientIP().IsValid() || c.RequestID != "" || c.Priority != zero.Priority || c.Category != "" || c.Status != 0 ||
		c.Reason != "" || c.Err != nil || c.Origin != "" || c.Instance != "" || len(c.Attempts) != 0 ||
		!c.Start.IsZero() || !c.EndpointStart.IsZero() || !c.End.IsZero() || c.BytesIn != 0 || c.BytesOut != 0 ||
		len(c.Passport()) != 0 || len(c.respHeaders) != 0 || c.Responded() || c.finished || len(c.doneHooks) != 0 {
		t.Fatalf("reset left state behind: %+v", c)
	}
	if _, ok := userKey.Get(c); ok {
		t.Fatal("bag value survived reset")
	}
	// The bag keeps its slots (so a pooled Context sets keys without
	// allocating) but no value in them, and holds no references for the GC.
	if kv := userKey.slot(c); kv == nil || kv.set || kv.v != "" {
		t.Fatalf("user slot after reset: %+v", kv)
	}
	if kv := countKey.slot(c); kv == nil || kv.set || kv.v != 0 {
		t.Fatalf("count slot after reset: %+v", kv)
	}
	for _, h := range c.doneHooks[:cap(c.doneHooks)] {
		if h.fn != nil || h.withArg != nil || h.arg != nil {
			t.Fatal("hook kept after reset")
		}
	}
	// A reset context runs its new hooks, not the old ones.
	hookRan = false
	c.refs.Store(1)
	c.Release()
	if hookRan {
		t.Fatal("old hook ran after reset")
	}
}

func TestPooledContextsComeBackClean(t *testing.T) {
	// The pool may or may not hand the same object back; either way every
	// acquired context must be clean.
	for i := 0; i < 100; i++ {
		c := AcquireContext()
		if _, set := countKey.Get(c); set || c.Status != 0 || c.Responded() || len(c.Attempts) != 0 || c.Priority != Unscored {
			t.Fatalf("acquired dirty context on iteration %d: %+v", i, c)
		}
		c.Status = 500
		c.Priority = 7
		c.Attempts = append(c.Attempts, Attempt{Instance: "x"})
		countKey.Set(c, i)
		c.SetResponseHeader("X", "y")
		c.Release()
	}
}

func TestKeys(t *testing.T) {
	c := AcquireContext()
	defer c.Release()
	if v, ok := userKey.Get(c); ok || v != "" {
		t.Fatalf("unset key = %q, %v", v, ok)
	}
	userKey.Set(c, "alice")
	countKey.Set(c, 1)
	countKey.Set(c, 2) // overwrite, not append
	if v, ok := userKey.Get(c); !ok || v != "alice" {
		t.Fatalf("user = %q, %v", v, ok)
	}
	if v, ok := countKey.Get(c); !ok || v != 2 {
		t.Fatalf("count = %d, %v", v, ok)
	}
	held := 0
	for _, kv := range c.bag {
		if kv != nil {
			held++
		}
	}
	if held != 2 {
		t.Fatalf("bag holds %d values, want 2", held)
	}
	// Keys are identities, not names: two keys named alike don't collide.
	other := NewKey[string]("user")
	if _, ok := other.Get(c); ok {
		t.Fatal("a different key with the same name read another's value")
	}
	if userKey.Name() != "user" {
		t.Fatalf("Name() = %q", userKey.Name())
	}
	type session struct{ id int }
	sk := NewKey[*session]("session")
	sk.Set(c, &session{id: 9})
	if s, ok := sk.Get(c); !ok || s.id != 9 {
		t.Fatalf("session = %+v, %v", s, ok)
	}
}

func TestPassportIsBounded(t *testing.T) {
	c := AcquireContext()
	defer c.Release()
	for i := 0; i < MaxPassportEvents*3; i++ {
		c.Log("event")
	}
	if n := len(c.Passport()); n != MaxPassportEvents {
		t.Fatalf("passport has %d events, want %d", n, MaxPassportEvents)
	}
	if c.Passport()[0].At < 0 {
		t.Fatal("negative event time")
	}
}

func TestResponseHeaders(t *testing.T) {
	c := AcquireContext()
	defer c.Release()
	var rc fasthttp.RequestCtx
	c.Request = &rc
	c.SetResponseHeader("X-Shed-Scope", "global")
	c.SetResponseHeader("Retry-After", "1")
	c.SetResponseHeader("X-Shed-Scope", "origin") // replaces, not duplicates
	rc.Response.Header.Set(StatusHeader, "spoofed-by-origin")
	c.MarkResponded(http.StatusOK, CategorySuccess)
	c.ApplyResponseHeaders()
	h := &rc.Response.Header
	if got := string(h.Peek("X-Shed-Scope")); got != "origin" {
		t.Fatalf("X-Shed-Scope = %q", got)
	}
	if got := string(h.Peek("Retry-After")); got != "1" {
		t.Fatalf("Retry-After = %q", got)
	}
	if got := string(h.Peek(StatusHeader)); got != "success" {
		t.Fatalf("%s = %q, the gateway's category must win", StatusHeader, got)
	}
	n := 0
	for k := range h.All() {
		if string(k) == "X-Shed-Scope" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("X-Shed-Scope appears %d times", n)
	}
}

// After the endpoint skipped the owned headers copying an origin's, the
// ones known then are added; one a filter asks for later still replaces
// what the response holds, and a local answer after that forgets the mark.
func TestResponseHeadersAfterOwnedHeadersSkipped(t *testing.T) {
	count := func(h *fasthttp.ResponseHeader, name string) (n int, last string) {
		for k, v := range h.All() {
			if strings.EqualFold(string(k), name) {
				n, last = n+1, string(v)
			}
		}
		return n, last
	}
	c := AcquireContext()
	defer c.Release()
	var rc fasthttp.RequestCtx
	c.Request = &rc
	c.SetResponseHeader("X-Request-Id", "abc")
	c.SetResponseHeaderInt("RateLimit-Remaining", 7)
	rc.Response.Header.Set("X-Late", "from-origin") // copied: not owned yet
	c.MarkResponded(http.StatusOK, CategorySuccess)
	c.OwnedHeadersSkipped()
	c.SetResponseHeader("X-Late", "from-outbound-filter")
	c.ApplyResponseHeaders()
	h := &rc.Response.Header
	for name, want := range map[string]string{"X-Request-Id": "abc", "RateLimit-Remaining": "7", "X-Late": "from-outbound-filter", StatusHeader: "success"} {
		if n, v := count(h, name); n != 1 || v != want {
			t.Errorf("%s: %d values, last %q; want one, %q", name, n, v, want)
		}
	}

	c2 := AcquireContext()
	defer c2.Release()
	var rc2 fasthttp.RequestCtx
	c2.Request = &rc2
	c2.SetResponseHeader("Retry-After", "2")
	c2.MarkResponded(http.StatusOK, CategorySuccess)
	c2.OwnedHeadersSkipped()
	c2.Respond(http.StatusServiceUnavailable, CategoryOriginReset, "replaced")
	rc2.Response.Header.Set("Retry-After", "9") // as a local answer might
	c2.ApplyResponseHeaders()
	if n, v := count(&rc2.Response.Header, "Retry-After"); n != 1 || v != "2" {
		t.Errorf("Retry-After after Respond: %d values, last %q", n, v)
	}
}

func TestRespondReplacesBody(t *testing.T) {
	c := AcquireContext()
	defer c.Release()
	var rc fasthttp.RequestCtx
	c.Request = &rc
	rc.Response.SetBodyString("partial origin body")
	c.Respond(http.StatusBadGateway, CategoryOriginReset, "origin reset the connection")
	if got := string(rc.Response.Body()); got != "origin reset the connection\n" {
		t.Fatalf("body %q", got)
	}
	if got := string(rc.Response.Header.ContentType()); got != "text/plain; charset=utf-8" {
		t.Fatalf("content type %q", got)
	}
	c.Respond(http.StatusNoContent, CategorySuccess, "")
	if len(rc.Response.Body()) != 0 || rc.Response.StatusCode() != http.StatusNoContent {
		t.Fatalf("empty reason left body %q", rc.Response.Body())
	}
}

func TestServices(t *testing.T) {
	type registry struct{ name string }
	regKey := NewServiceKey[*registry]("origins")
	limitKey := NewServiceKey[int]("limit")

	if _, ok := regKey.Lookup(nil); ok {
		t.Fatal("lookup in nil services succeeded")
	}
	s := &Services{}
	if _, ok := regKey.Lookup(s); ok {
		t.Fatal("lookup of an absent service succeeded")
	}
	r1 := &registry{name: "one"}
	regKey.Provide(s, r1)
	limitKey.Provide(s, 5)
	limitKey.Provide(s, 6)
	if got, ok := regKey.Lookup(s); !ok || got != r1 {
		t.Fatalf("registry = %v, %v", got, ok)
	}
	if got, ok := limitKey.Lookup(s); !ok || got != 6 {
		t.Fatalf("limit = %d, %v", got, ok)
	}
	if len(s.vals) != 2 {
		t.Fatalf("%d services stored, want 2", len(s.vals))
	}
	if _, ok := NewServiceKey[int]("limit").Lookup(s); ok {
		t.Fatal("a different key with the same name found a service")
	}
}

func TestOnDoneWithRunsInOrderWithItsArgument(t *testing.T) {
	c := AcquireContext()
	var order []string
	c.OnDone(func(*Context) { order = append(order, "plain") })
	c.OnDoneWith(func(_ *Context, arg any) { order = append(order, *arg.(*string)) }, new("with-arg"))
	c.Release()
	if len(order) != 2 || order[0] != "plain" || order[1] != "with-arg" {
		t.Fatalf("hooks ran as %v, want [plain with-arg]", order)
	}
}

func TestKeySetOnAPooledContextDoesNotAllocate(t *testing.T) {
	c := AcquireContext()
	defer c.Release()
	countKey.Set(c, 1) // the slot's first use allocates it
	c.reset()
	c.refs.Store(1)
	if n := testing.AllocsPerRun(100, func() {
		countKey.Set(c, 2)
		if v, _ := countKey.Get(c); v != 2 {
			t.Fatal("lost value")
		}
		c.reset()
		c.refs.Store(1)
	}); n != 0 {
		t.Fatalf("Key.Set on a reused Context allocates %.0f times", n)
	}
}

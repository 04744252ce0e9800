package filters

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// testFilter is a configurable Filter; nil funcs mean "always" and "no-op".
type testFilter struct {
	name   string
	stage  Stage
	order  int
	should func(*Context) bool
	apply  func(*Context) error
}

func (f *testFilter) Name() string { return f.name }
func (f *testFilter) Stage() Stage { return f.stage }
func (f *testFilter) Order() int   { return f.order }
func (f *testFilter) Apply(c *Context) error {
	if f.apply == nil {
		return nil
	}
	return f.apply(c)
}
func (f *testFilter) ShouldFilter(c *Context) bool {
	return f.should == nil || f.should(c)
}

type asyncTestFilter struct {
	testFilter
	timeout time.Duration
	limit   int
	async   func(ctx context.Context, c *Context) error
}

func (f *asyncTestFilter) AsyncLimits() (time.Duration, int) { return f.timeout, f.limit }
func (f *asyncTestFilter) ApplyAsync(ctx context.Context, c *Context) error {
	return f.async(ctx, c)
}

var (
	_ Filter      = (*testFilter)(nil)
	_ AsyncFilter = (*asyncTestFilter)(nil)
)

// recorder collects the names of filters as they run.
type recorder struct {
	mu  sync.Mutex
	ran []string
}

func (r *recorder) filter(name string, stage Stage, order int) *testFilter {
	return &testFilter{name: name, stage: stage, order: order, apply: func(*Context) error {
		r.mu.Lock()
		r.ran = append(r.ran, name)
		r.mu.Unlock()
		return nil
	}}
}

func (r *recorder) names() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.ran, ",")
}

// newCtx returns a Context wired to a fresh fasthttp.RequestCtx, released
// at the end of the test.
func newCtx(t *testing.T) *Context {
	t.Helper()
	c := AcquireContext()
	c.Request = new(fasthttp.RequestCtx)
	t.Cleanup(c.Release)
	return c
}

// endpoint answers 200 success itself, as the proxy endpoint does.
func endpoint(r *recorder) *testFilter {
	return &testFilter{name: "endpoint", stage: Endpoint, apply: func(c *Context) error {
		if r != nil {
			r.mu.Lock()
			r.ran = append(r.ran, "endpoint")
			r.mu.Unlock()
		}
		c.Request.Response.SetStatusCode(http.StatusOK)
		c.Request.Response.SetBodyString("from endpoint")
		c.MarkResponded(http.StatusOK, CategorySuccess)
		return nil
	}}
}

func mustBuild(t *testing.T, fs ...Filter) *Chain {
	t.Helper()
	ch, err := NewChainBuilder().Build(fs)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestChainOrdersByOrderThenName(t *testing.T) {
	rec := &recorder{}
	fs := []Filter{
		rec.filter("out-b", Outbound, 10),
		rec.filter("in-z", Inbound, 5),
		endpoint(rec),
		rec.filter("in-b", Inbound, 10),
		rec.filter("out-a", Outbound, 10),
		rec.filter("in-a", Inbound, 10),
		rec.filter("in-first", Inbound, -100),
		rec.filter("out-0", Outbound, 0),
	}
	want := "in-first,in-z,in-a,in-b,endpoint,out-0,out-a,out-b"
	// Every input order gives the same chain.
	for shift := range fs {
		rotated := append(append([]Filter(nil), fs[shift:]...), fs[:shift]...)
		ch := mustBuild(t, rotated...)
		var names []string
		for _, f := range ch.Filters() {
			names = append(names, f.Name())
		}
		if got := strings.Join(names, ","); got != want {
			t.Fatalf("rotation %d: Filters() = %s, want %s", shift, got, want)
		}
		rec.ran = nil
		c := newCtx(t)
		ch.Run(c)
		if got := rec.names(); got != want {
			t.Fatalf("rotation %d: ran %s, want %s", shift, got, want)
		}
		if c.Status != http.StatusOK || c.Category != CategorySuccess || c.EndpointStart.IsZero() {
			t.Fatalf("status %d category %q", c.Status, c.Category)
		}
	}
}

func TestChainShouldFilterSkips(t *testing.T) {
	rec := &recorder{}
	skipped := rec.filter("skipped", Inbound, 0)
	skipped.should = func(*Context) bool { return false }
	ch := mustBuild(t, skipped, rec.filter("kept", Inbound, 1), endpoint(rec))
	ch.Run(newCtx(t))
	if got := rec.names(); got != "kept,endpoint" {
		t.Fatalf("ran %s", got)
	}
}

func TestInboundRespondSkipsRestButRunsOutbound(t *testing.T) {
	rec := &recorder{}
	shed := &testFilter{name: "shed", stage: Inbound, order: 10, apply: func(c *Context) error {
		rec.ran = append(rec.ran, "shed")
		c.SetResponseHeader("Retry-After", "1")
		c.Respond(http.StatusServiceUnavailable, CategoryShedGlobal, "overloaded")
		return nil
	}}
	ch := mustBuild(t,
		rec.filter("before", Inbound, 0), shed, rec.filter("after", Inbound, 20),
		endpoint(rec), rec.filter("log", Outbound, 0), rec.filter("metrics", Outbound, 1))
	c := newCtx(t)
	ch.Run(c)
	c.ApplyResponseHeaders()
	if got := rec.names(); got != "before,shed,log,metrics" {
		t.Fatalf("ran %s", got)
	}
	resp := &c.Request.Response
	if resp.StatusCode() != http.StatusServiceUnavailable || string(resp.Body()) != "overloaded\n" {
		t.Fatalf("response %d %q", resp.StatusCode(), resp.Body())
	}
	if got := string(resp.Header.Peek(StatusHeader)); got != string(CategoryShedGlobal) {
		t.Fatalf("%s = %q", StatusHeader, got)
	}
	if got := string(resp.Header.Peek("Retry-After")); got != "1" {
		t.Fatalf("Retry-After = %q", got)
	}
	if !c.Responded() || c.Reason != "overloaded" || c.Err != nil {
		t.Fatalf("context %+v", c)
	}
}

func TestChainWithoutEndpoint(t *testing.T) {
	rec := &recorder{}
	ch := mustBuild(t, rec.filter("in", Inbound, 0), rec.filter("out", Outbound, 0))
	c := newCtx(t)
	ch.Run(c)
	if c.Status != http.StatusInternalServerError || c.Category != CategoryInternalError || rec.names() != "in,out" {
		t.Fatalf("status %d category %q ran %s", c.Status, c.Category, rec.names())
	}
	if c.Request.Response.StatusCode() != http.StatusInternalServerError {
		t.Fatalf("response status %d", c.Request.Response.StatusCode())
	}
}

func TestFilterErrors(t *testing.T) {
	plain := errors.New("backend said no")
	shared := &Error{Category: CategoryRateLimited, Reason: "shared sentinel"}
	tests := []struct {
		name     string
		apply    func(*Context) error
		status   int
		category Category
		reason   string
		is       error
	}{
		{"typed error", func(*Context) error {
			return Fail(http.StatusTooManyRequests, CategoryRateLimited, "slow down", nil)
		}, http.StatusTooManyRequests, CategoryRateLimited, "slow down", nil},
		{"wrapped typed error", func(*Context) error {
			return fmt.Errorf("auth: %w", Fail(http.StatusUnauthorized, "auth_failed", "bad token", plain))
		}, http.StatusUnauthorized, "auth_failed", "bad token", plain},
		{"typed error without status or category", func(*Context) error {
			return &Error{Reason: "half filled"}
		}, http.StatusInternalServerError, CategoryFilterError, "half filled", nil},
		{"shared error value", func(*Context) error { return shared }, http.StatusInternalServerError, CategoryRateLimited, "shared sentinel", nil},
		{"plain error", func(*Context) error { return plain }, http.StatusInternalServerError, CategoryFilterError, "filter failing failed", plain},
		{"panic", func(*Context) error { panic("boom") }, http.StatusInternalServerError, CategoryFilterError, "filter failing failed", nil},
		{"runtime error panic", func(c *Context) error {
			_ = c.Attempts[len(c.Attempts)] // index out of range
			return nil
		}, http.StatusInternalServerError, CategoryFilterError, "filter failing failed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			ch := mustBuild(t, &testFilter{name: "failing", stage: Inbound, apply: tt.apply},
				rec.filter("later", Inbound, 1), endpoint(rec), rec.filter("out", Outbound, 0))
			c := newCtx(t)
			ch.Run(c)
			if c.Status != tt.status || c.Category != tt.category || c.Reason != tt.reason {
				t.Fatalf("got %d %q %q, want %d %q %q", c.Status, c.Category, c.Reason, tt.status, tt.category, tt.reason)
			}
			if c.Request.Response.StatusCode() != tt.status {
				t.Fatalf("response status %d", c.Request.Response.StatusCode())
			}
			if got := rec.names(); got != "out" {
				t.Fatalf("after a failure ran %s, want only the outbound filter", got)
			}
			if c.Err == nil {
				t.Fatal("Err not recorded")
			}
			if tt.is != nil && !errors.Is(c.Err, tt.is) {
				t.Fatalf("Err %v does not wrap %v", c.Err, tt.is)
			}
			if p := FormatPassport(c.Passport()); !strings.Contains(p, "failing failed: "+string(tt.category)) {
				t.Fatalf("passport %s", p)
			}
		})
	}
	// The chain fills in defaults on its own copy: a filter's shared error
	// value is never written to (that would race between requests).
	if shared.Status != 0 {
		t.Fatalf("shared error was modified: %+v", shared)
	}
}

func TestFilterPanicInShouldFilter(t *testing.T) {
	rec := &recorder{}
	bad := &testFilter{name: "bad", stage: Inbound, should: func(c *Context) bool {
		var p *Context
		return p.Responded()
	}}
	ch := mustBuild(t, bad, endpoint(rec), rec.filter("out", Outbound, 0))
	c := newCtx(t)
	ch.Run(c)
	if c.Status != http.StatusInternalServerError || c.Category != CategoryFilterError || rec.names() != "out" {
		t.Fatalf("got %d %q, ran %s", c.Status, c.Category, rec.names())
	}
}

func TestEndpointErrorStillRunsOutbound(t *testing.T) {
	rec := &recorder{}
	ep := &testFilter{name: "proxy", stage: Endpoint, apply: func(*Context) error {
		return Fail(http.StatusBadGateway, CategoryOriginConnectError, "connection refused", nil)
	}}
	ch := mustBuild(t, ep, rec.filter("out", Outbound, 0))
	c := newCtx(t)
	ch.Run(c)
	if c.Status != http.StatusBadGateway || c.Category != CategoryOriginConnectError || rec.names() != "out" {
		t.Fatalf("got %d %q, ran %s", c.Status, c.Category, rec.names())
	}
}

func TestAsyncFilterDeadline(t *testing.T) {
	rec := &recorder{}
	slow := &asyncTestFilter{
		testFilter: testFilter{name: "auth", stage: Inbound},
		timeout:    20 * time.Millisecond,
		async: func(ctx context.Context, c *Context) error {
			<-ctx.Done() // a well-behaved filter gives up when told to
			return ctx.Err()
		},
	}
	ch := mustBuild(t, slow, endpoint(rec), rec.filter("out", Outbound, 0))
	c := newCtx(t)
	start := time.Now()
	ch.Run(c)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("chain took %v, deadline was 20ms", took)
	}
	if c.Status != http.StatusGatewayTimeout || c.Category != CategoryFilterTimeout || rec.names() != "out" {
		t.Fatalf("got %d %q, ran %s", c.Status, c.Category, rec.names())
	}
	if !strings.Contains(c.Reason, "20ms") || !errors.Is(c.Err, context.DeadlineExceeded) {
		t.Fatalf("reason %q err %v", c.Reason, c.Err)
	}
}

func TestAsyncFilterSuccessAndError(t *testing.T) {
	var sawDeadline bool
	ok := &asyncTestFilter{
		testFilter: testFilter{name: "lookup", stage: Inbound},
		async: func(ctx context.Context, c *Context) error {
			_, sawDeadline = ctx.Deadline()
			c.Origin = "looked-up"
			return nil
		},
	}
	ch := mustBuild(t, ok, endpoint(nil))
	c := newCtx(t)
	ch.Run(c)
	if c.Status != http.StatusOK || c.Origin != "looked-up" || !sawDeadline {
		t.Fatalf("got %d origin %q deadline %v", c.Status, c.Origin, sawDeadline)
	}

	denied := &asyncTestFilter{
		testFilter: testFilter{name: "auth", stage: Inbound},
		async: func(context.Context, *Context) error {
			return Fail(http.StatusForbidden, "auth_denied", "no", nil)
		},
	}
	c = newCtx(t)
	mustBuild(t, denied, endpoint(nil)).Run(c)
	if c.Status != http.StatusForbidden || c.Category != "auth_denied" {
		t.Fatalf("got %d %q", c.Status, c.Category)
	}
}

// TestAsyncFilterConcurrencyCap holds the filter's cap worth of calls
// in flight and checks the next request fails fast instead of queueing.
func TestAsyncFilterConcurrencyCap(t *testing.T) {
	const limit = 3
	entered := make(chan struct{})
	release := make(chan struct{})
	var skip sync.Map // contexts whose call should not block
	gate := &asyncTestFilter{
		testFilter: testFilter{name: "auth", stage: Inbound},
		timeout:    time.Minute,
		limit:      limit,
		async: func(ctx context.Context, c *Context) error {
			if _, ok := skip.Load(c); ok {
				return nil
			}
			entered <- struct{}{}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	b := NewChainBuilder()
	chA, err := b.Build([]Filter{gate, endpoint(nil)})
	if err != nil {
		t.Fatal(err)
	}
	// A second chain (another route) with the same instance shares the cap:
	// it protects the filter's dependency, not one route.
	chB, err := b.Build([]Filter{gate, endpoint(nil)})
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	held := make([]*Context, limit)
	for i := range held {
		held[i] = newCtx(t)
		wg.Add(1)
		go func(c *Context) {
			defer wg.Done()
			chA.Run(c)
		}(held[i])
		<-entered
	}

	for _, ch := range []*Chain{chA, chB} {
		c := newCtx(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			ch.Run(c)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			close(release)
			t.Fatal("a request over the cap blocked instead of failing fast")
		}
		if c.Status != http.StatusServiceUnavailable || c.Category != CategoryFilterOverloaded {
			t.Fatalf("over the cap: %d %q", c.Status, c.Category)
		}
	}

	// A chain from another builder (another snapshot) has its own gate.
	other := mustBuild(t, gate, endpoint(nil))
	c := newCtx(t)
	skip.Store(c, true)
	other.Run(c)
	if c.Status != http.StatusOK {
		t.Fatalf("other snapshot's chain: %d %q", c.Status, c.Category)
	}

	close(release)
	wg.Wait()
	for i, c := range held {
		if c.Status != http.StatusOK || c.Category != CategorySuccess {
			t.Fatalf("held request %d: %d %q", i, c.Status, c.Category)
		}
	}
	// The slots are free again once the held calls return.
	c = newCtx(t)
	skip.Store(c, true)
	chA.Run(c)
	if c.Status != http.StatusOK {
		t.Fatalf("after release: %d %q", c.Status, c.Category)
	}
}

func TestAsyncFilterDefaultTimeout(t *testing.T) {
	var got time.Duration
	f := &asyncTestFilter{
		testFilter: testFilter{name: "x", stage: Inbound},
		async: func(ctx context.Context, _ *Context) error {
			d, _ := ctx.Deadline()
			got = time.Until(d)
			return nil
		},
	}
	mustBuild(t, f, endpoint(nil)).Run(newCtx(t))
	if got <= 0 || got > time.Second {
		t.Fatalf("deadline in %v, want the 1s default", got)
	}
}

func TestBuildRejectsTwoEndpoints(t *testing.T) {
	_, err := NewChainBuilder().Build([]Filter{
		&testFilter{name: "proxy", stage: Endpoint},
		&testFilter{name: "in", stage: Inbound},
		&testFilter{name: "static", stage: Endpoint},
	})
	if err == nil || !strings.Contains(err.Error(), `"proxy"`) || !strings.Contains(err.Error(), `"static"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestBuildRejectsUnknownStage(t *testing.T) {
	_, err := NewChainBuilder().Build([]Filter{&testFilter{name: "odd", stage: Stage(9)}})
	if err == nil || !strings.Contains(err.Error(), `"odd"`) {
		t.Fatalf("err = %v", err)
	}
}

// valueFilter is a Filter implemented on a non-comparable value type, which
// is legal Go; the builder must not use it as a map key.
type valueFilter struct{ tags []string }

func (valueFilter) Name() string               { return "value" }
func (valueFilter) Stage() Stage               { return Inbound }
func (valueFilter) Order() int                 { return 0 }
func (valueFilter) ShouldFilter(*Context) bool { return true }
func (v valueFilter) Apply(c *Context) error {
	c.SetResponseHeader("X-Tags", strings.Join(v.tags, ","))
	return nil
}

func TestBuildAcceptsNonComparableFilter(t *testing.T) {
	b := NewChainBuilder()
	f := valueFilter{tags: []string{"a", "b"}}
	for i := 0; i < 2; i++ {
		ch, err := b.Build([]Filter{f, endpoint(nil)})
		if err != nil {
			t.Fatal(err)
		}
		c := newCtx(t)
		ch.Run(c)
		c.ApplyResponseHeaders()
		if got := string(c.Request.Response.Header.Peek("X-Tags")); got != "a,b" {
			t.Fatalf("X-Tags = %q", got)
		}
	}
}

func TestStageString(t *testing.T) {
	for s, want := range map[Stage]string{Inbound: "inbound", Endpoint: "endpoint", Outbound: "outbound", Stage(7): "unknown"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", s, s.String())
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	inner := errors.New("dial tcp: refused")
	e := Fail(http.StatusBadGateway, CategoryOriginConnectError, "origin down", inner)
	if e.Error() != "origin_connect_error: origin down: dial tcp: refused" || !errors.Is(e, inner) {
		t.Fatalf("%q", e.Error())
	}
	if got := Fail(http.StatusTooManyRequests, CategoryRateLimited, "slow", nil).Error(); got != "rate_limited: slow" {
		t.Fatalf("%q", got)
	}
}

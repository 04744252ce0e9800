package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

// The test servers start fasthttp's process-wide Date header updater, a
// once-per-process goroutine that is not ours to stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

// startServer runs a real fasthttp server on 127.0.0.1 that answers by
// path: /ok 200, /shed 503 with the shed header, /busy 503 without it,
// /fail 500, /slow 200 once release is closed.
func startServer(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A short idle-worker period lets the server's cleaner notice Shutdown
	// promptly, so goleak sees it gone.
	srv := &fasthttp.Server{MaxIdleWorkerDuration: 50 * time.Millisecond, Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/ok":
			if string(ctx.Request.Header.Peek("X-Request-Kind")) != "user" {
				ctx.Error("missing class header", fasthttp.StatusBadRequest)
			}
		case "/shed":
			ctx.Response.Header.Set("X-Floodgate-Shed", "global; cutoff=48; score=90")
			ctx.Response.Header.Set("Retry-After", "2")
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		case "/origin-shed":
			ctx.Response.Header.Set("X-Floodgate-Shed", "origin; name=api; cutoff=12; score=40")
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		case "/busy":
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		case "/fail":
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		case "/slow":
			<-release
		default:
			ctx.NotFound()
		}
	}}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Error(err)
		}
		// Shutdown only closes listeners Serve has registered; if the test
		// finished before Serve got that far, closing ln ends it instead.
		ln.Close()
		if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

func shortIdle(o *options) { o.idleConn = 50 * time.Millisecond }

func baseOptions(target string) options {
	return options{Target: target, Rate: 2000, MaxOutstanding: 100, Timeout: 5 * time.Second, idleConn: 50 * time.Millisecond}
}

func findClass(t *testing.T, r *Report, name string) ClassReport {
	t.Helper()
	for _, c := range r.Classes {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no class %q", name)
	return ClassReport{}
}

func TestRunCountsPerClass(t *testing.T) {
	target := startServer(t, nil)
	o := baseOptions(target)
	o.Count = 600
	o.MaxOutstanding = 600 // never reached, so counts are exact however slow the machine
	o.Classes = []Class{
		{Name: "critical", Weight: 2, Path: "/ok", Headers: map[string]string{"X-Request-Kind": "user"}},
		{Name: "prefetch", Weight: 1, Path: "/shed"},
		{Name: "origin", Weight: 1, Path: "/origin-shed"},
		{Name: "busy", Weight: 1, Path: "/busy", Method: "post"},
		{Name: "broken", Weight: 1, Path: "/fail"},
	}
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][4]uint64{ // sent, ok, shed, errors
		"critical": {200, 200, 0, 0},
		"prefetch": {100, 0, 100, 0},
		"origin":   {100, 0, 100, 0},
		"busy":     {100, 0, 0, 100},
		"broken":   {100, 0, 0, 100},
	}
	for name, w := range want {
		c := findClass(t, rep, name)
		got := [4]uint64{c.Sent, c.Succeeded, c.Shed, c.Errors}
		if got != w || c.Dropped != 0 || c.Scheduled != c.Sent {
			t.Errorf("%s: sent/ok/shed/errors = %v (dropped %d), want %v", name, got, c.Dropped, w)
		}
	}
	crit := findClass(t, rep, "critical")
	if crit.P50Ms <= 0 || crit.P99Ms < crit.P50Ms || crit.SuccessRate != 1 {
		t.Errorf("critical latency p50 %v p99 %v rate %v", crit.P50Ms, crit.P99Ms, crit.SuccessRate)
	}
	if p := findClass(t, rep, "prefetch"); p.P50Ms != 0 || p.ShedByScope["global"] != 100 {
		t.Errorf("prefetch: p50 %v (successes only), shed by scope %v", p.P50Ms, p.ShedByScope)
	}
	if rep.Total.ShedByScope["origin"] != 100 || rep.Total.ErrorKinds["http_503"] != 100 || rep.Total.ErrorKinds["http_500"] != 100 {
		t.Errorf("totals: shed %v errors %v", rep.Total.ShedByScope, rep.Total.ErrorKinds)
	}
	if rep.Total.Sent != 600 || rep.Total.Succeeded != 200 || rep.Total.Shed != 200 || rep.Total.Errors != 200 {
		t.Errorf("total %+v", rep.Total)
	}
}

// Requests due while the outstanding cap is full are dropped and counted,
// not delayed: the schedule does not slow down.
func TestRunDropsBeyondOutstandingCap(t *testing.T) {
	release := make(chan struct{})
	target := startServer(t, release)
	o := baseOptions(target)
	o.Count = 20
	o.MaxOutstanding = 3
	o.Classes = []Class{{Name: "slow", Weight: 1, Path: "/slow"}}
	o.afterSchedule = func() { close(release) }
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c := findClass(t, rep, "slow")
	if c.Scheduled != 20 || c.Sent != 3 || c.Dropped != 17 || c.Succeeded != 3 {
		t.Fatalf("scheduled %d sent %d dropped %d ok %d; want 20 3 17 3", c.Scheduled, c.Sent, c.Dropped, c.Succeeded)
	}
	// 20 requests at 2000/s are due within 10 ms; a closed-loop generator
	// would have waited for the slow answers instead.
	if rep.ScheduleSeconds > 1 {
		t.Fatalf("scheduling took %.2fs: the generator blocked on outstanding requests", rep.ScheduleSeconds)
	}
}

func TestRunBoundedByDuration(t *testing.T) {
	target := startServer(t, nil)
	o := baseOptions(target)
	o.Rate = 200
	o.Duration = 250 * time.Millisecond
	o.Classes = []Class{{Name: "ok", Weight: 1, Path: "/ok", Headers: map[string]string{"X-Request-Kind": "user"}}}
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// Due times 0, 5ms, ..., 245ms.
	if c := findClass(t, rep, "ok"); c.Scheduled != 50 || c.Succeeded != 50 {
		t.Fatalf("scheduled %d ok %d, want 50 50", c.Scheduled, c.Succeeded)
	}
	if rep.ScheduleSeconds < 0.24 || rep.AchievedRate > 210 {
		t.Fatalf("schedule %.3fs achieved %.1f/s", rep.ScheduleSeconds, rep.AchievedRate)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	target := startServer(t, nil)
	o := baseOptions(target)
	o.Rate = 10
	o.Duration = time.Hour
	o.Classes = []Class{{Name: "ok", Weight: 1, Path: "/ok", Headers: map[string]string{"X-Request-Kind": "user"}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Report, 1)
	go func() {
		rep, err := run(ctx, o)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	cancel()
	select {
	case rep := <-done:
		if rep != nil && rep.Total.Scheduled > 1 {
			t.Fatalf("scheduled %d after cancel", rep.Total.Scheduled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop on cancel")
	}
}

func TestTransportErrorsCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	o := baseOptions("http://" + addr)
	o.Count = 5
	o.Classes = []Class{{Name: "x", Weight: 1, Path: "/"}}
	rep, err := run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Classes[0]; c.Sent != 5 || c.Errors != 5 || c.Succeeded != 0 || c.ErrorKinds["dial"]+c.ErrorKinds["other"] != 5 {
		t.Fatalf("%+v", c)
	}
}

func TestTargetMustBeLoopback(t *testing.T) {
	o := options{Rate: 1, Count: 1, MaxOutstanding: 1, Timeout: time.Second, Classes: []Class{{Name: "a", Weight: 1, Path: "/"}}}
	for target, ok := range map[string]bool{
		"http://127.0.0.1:8080":     true,
		"http://127.8.9.10":         true,
		"http://localhost:1":        true,
		"https://[::1]:8443/base":   true,
		"http://10.1.2.3:8080":      false,
		"http://example.com":        false,
		"http://[::ffff:8.8.8.8]:1": false,
		"ftp://127.0.0.1":           false,
	} {
		o.Target = target
		_, err := o.validate()
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want ok=%v", target, err, ok)
		}
		if !ok && strings.HasPrefix(target, "http") && (err == nil || !strings.Contains(err.Error(), "-allow-remote")) {
			t.Errorf("%s: error should point at -allow-remote: %v", target, err)
		}
	}
	o.Target, o.AllowRemote = "http://10.1.2.3:8080", true
	if _, err := o.validate(); err != nil {
		t.Errorf("-allow-remote: %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	o := options{Target: "http://127.0.0.1", Rate: 0, MaxOutstanding: 0, Timeout: 0,
		Classes: []Class{{Name: "a", Weight: 0, Path: "x"}, {Name: "a", Weight: 1, Path: "/"}}}
	_, err := o.validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"-rate", "unbounded run", "-max-outstanding", "-timeout", "weight must be", "path must start", "duplicate name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestClassFlagsAndFiles(t *testing.T) {
	c, err := parseClassFlag("name=play weight=3 method=post path=/api/v1/play header=X-Request-Kind:user header=X-Device:tv")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "play" || c.Weight != 3 || c.Method != "post" || c.Path != "/api/v1/play" || c.Headers["X-Device"] != "tv" || c.Headers["X-Request-Kind"] != "user" {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{"name", "weight=x", "header=nocolon", "color=red"} {
		if _, err := parseClassFlag(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	dir := t.TempDir()
	yml := filepath.Join(dir, "c.yaml")
	js := filepath.Join(dir, "c.json")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(yml, []byte("classes:\n  - {name: a, weight: 2, path: /a, headers: {X-K: v}}\n  - {name: b, weight: 1, path: /b}\n"), 0o600)
	os.WriteFile(js, []byte(`{"classes":[{"name":"a","weight":1,"method":"GET","path":"/a"}]}`), 0o600)
	os.WriteFile(bad, []byte("classes:\n  - {name: a, wieght: 2, path: /a}\n"), 0o600)
	cs, err := loadClassFile(yml)
	if err != nil || len(cs) != 2 || cs[0].Headers["X-K"] != "v" || cs[0].Weight != 2 {
		t.Fatalf("yaml: %+v %v", cs, err)
	}
	if cs, err := loadClassFile(js); err != nil || len(cs) != 1 {
		t.Fatalf("json: %+v %v", cs, err)
	}
	if _, err := loadClassFile(bad); err == nil || !strings.Contains(err.Error(), "wieght") {
		t.Fatalf("typo not reported: %v", err)
	}
}

func TestPickerProportions(t *testing.T) {
	p := newPicker([]Class{{Weight: 5}, {Weight: 1}, {Weight: 12}})
	counts := make([]int, 3)
	run := 0
	last, maxRun := -1, 0
	for range 18 * 10 {
		i := p.next()
		counts[i]++
		if i == last {
			run++
		} else {
			run = 1
		}
		last, maxRun = i, max(maxRun, run)
	}
	if counts[0] != 50 || counts[1] != 10 || counts[2] != 120 {
		t.Fatalf("counts %v", counts)
	}
	if maxRun > 3 {
		t.Fatalf("classes bunched: a run of %d", maxRun)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * 10 * time.Microsecond) // 0.01 .. 100 ms
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {0.001, 0.1}} {
		if got := h.quantile(c.q); math.Abs(got-c.want)/c.want > 0.01 {
			t.Errorf("q%v = %v ms, want %v ± 1%%", c.q, got, c.want)
		}
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram")
	}
	h.record(1000 * time.Hour) // clamps, does not panic
	h.record(-time.Second)
}

func TestRealMainJSONAndText(t *testing.T) {
	target := startServer(t, nil)
	var out, errOut bytes.Buffer
	args := []string{"-target", target, "-rate", "1000", "-count", "20", "-duration", "0", "-json",
		"-class", "name=crit weight=1 path=/ok header=X-Request-Kind:user", "-class", "name=low weight=1 path=/shed"}
	if err := realMain(context.Background(), args, &out, &errOut, shortIdle); err != nil {
		t.Fatal(err, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.Succeeded != 10 || rep.Total.Shed != 10 || len(rep.Classes) != 2 {
		t.Fatalf("%+v", rep.Total)
	}
	out.Reset()
	if err := realMain(context.Background(), args[:len(args)-5], &out, &errOut, shortIdle); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "TOTAL") || !strings.Contains(s, "default") {
		t.Fatalf("text report:\n%s", s)
	}
	if err := realMain(context.Background(), []string{"-target", "http://192.0.2.1"}, &out, &errOut, shortIdle); err == nil {
		t.Fatal("remote target accepted")
	}
}

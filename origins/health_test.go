package origins

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func healthConfig(addrs ...string) OriginConfig {
	cfg := staticConfig(addrs...)
	cfg.HealthCheck = HealthCheckConfig{
		Interval: 10 * time.Millisecond, Timeout: 500 * time.Millisecond, Path: "/healthz",
		ExpectedStatus: 200, HealthyThreshold: 2, UnhealthyThreshold: 3,
	}
	return cfg
}

func TestHealthChecksEjectAndRestore(t *testing.T) {
	good, flaky := startBackend(t, 0, 200), startBackend(t, 0, 200)
	var changes atomic.Int32
	r, err := NewRegistry(map[string]OriginConfig{"api": healthConfig(good.addr, flaky.addr)}, Options{
		Logger: discardLogger(),
		Hooks:  Hooks{OnHealthChange: func(string, string, bool) { changes.Add(1) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o, _ := r.Get("api")
	in := byAddr(o, flaky.addr)

	flaky.health.Store(503)
	eventually(t, 5*time.Second, "instance marked unhealthy", func() bool { return !in.Healthy() })
	for i := 0; i < 100; i++ {
		got, done, err := o.Pick(nil)
		if err != nil || got == in {
			t.Fatalf("unhealthy instance picked (%v)", err)
		}
		done.Done(Result{Outcome: OutcomeSuccess})
	}
	flaky.health.Store(200)
	eventually(t, 5*time.Second, "instance healthy again", func() bool { return in.Healthy() })
	if changes.Load() != 2 {
		t.Fatalf("health hook calls: %d", changes.Load())
	}
	// Checks switched off by reload: instances are trusted again, the checker stops.
	cfg := staticConfig(good.addr, flaky.addr)
	flaky.health.Store(503)
	if err := r.Update(map[string]OriginConfig{"api": cfg}); err != nil {
		t.Fatal(err)
	}
	if o.bg.health.cancel != nil || !in.Healthy() {
		t.Fatal("health checker should be stopped and instances healthy")
	}
}

func TestHealthThresholds(t *testing.T) {
	cfg := healthConfig("10.0.0.1:80")
	o := testOrigin(t, cfg, nil)
	in := o.Instances()[0]
	status := 500
	probe := func(context.Context, string, string) (int, error) { return status, nil }
	ctx := context.Background()
	o.healthRound(ctx, cfg.HealthCheck, probe)
	o.healthRound(ctx, cfg.HealthCheck, probe)
	if !in.Healthy() {
		t.Fatal("two failures must not eject with unhealthy_threshold 3")
	}
	o.healthRound(ctx, cfg.HealthCheck, probe)
	if in.Healthy() {
		t.Fatal("third failure must eject")
	}
	status = 200
	o.healthRound(ctx, cfg.HealthCheck, probe)
	if in.Healthy() {
		t.Fatal("one success must not restore with healthy_threshold 2")
	}
	o.healthRound(ctx, cfg.HealthCheck, probe)
	if !in.Healthy() {
		t.Fatal("second success must restore")
	}
	errProbe := func(context.Context, string, string) (int, error) { return 0, errors.New("refused") }
	for i := 0; i < 3; i++ {
		o.healthRound(ctx, cfg.HealthCheck, errProbe)
	}
	if in.Healthy() {
		t.Fatal("probe errors count as failures")
	}
}

func TestHTTPProberAgainstRealServer(t *testing.T) {
	b := startBackend(t, 0, 200)
	p := NewHTTPProber(time.Second)
	defer p.Close()
	b.health.Store(418)
	status, err := p.Probe(context.Background(), b.addr, "/healthz")
	if err != nil || status != 418 {
		t.Fatalf("probe: %d %v", status, err)
	}
	b.stop()
	if _, err := p.Probe(context.Background(), b.addr, "/healthz"); err == nil {
		t.Fatal("probe of a stopped server must fail")
	}
}

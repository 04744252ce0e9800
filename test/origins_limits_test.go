package test

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/origins"
)

// The per-origin concurrency cap answers at once with its own category
// instead of queueing behind the requests already at the origin.
func TestOriginMaxConcurrencyRejectsWithItsOwnCategory(t *testing.T) {
	arrived := make(chan struct{}, 8)
	release := make(chan struct{})
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
		ctx.SetBodyString("done")
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	gw := startGateway(t, poolConfig([]string{o.addr}, "    max_concurrency: 2\n"))
	c := httpClient(t)
	results := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			resp, err := c.Get("http://" + gw.addr + "/held")
			if err != nil {
				results <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	for i := 0; i < 2; i++ {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("held requests never reached the origin")
		}
	}
	start := time.Now()
	resp, body := get(t, c, "http://"+gw.addr+"/third")
	if resp.StatusCode != 503 || resp.Header.Get("X-Floodgate-Status") != "origin_concurrency" {
		t.Fatalf("third request at the cap: %d %q %s", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the rejection waited %s: the cap must not queue", d)
	}
	close(release)
	for i := 0; i < 2; i++ {
		if s := <-results; s != 200 {
			t.Fatalf("held request: %d", s)
		}
	}
}

// Active health checks take an instance out of rotation when its health
// endpoint fails, even though it still answers real requests (so no
// breaker would), and put it back when the endpoint recovers.
func TestOriginActiveHealthCheckEjectsAndRestores(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int64
	sick := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" {
			if !healthy.Load() {
				ctx.SetStatusCode(500)
			}
			return
		}
		hits.Add(1)
		ctx.SetBodyString("sick-but-serving")
	})
	fine := startOrigin(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("fine") })
	healthy.Store(true)
	gw := startGateway(t, poolConfig([]string{sick.addr, fine.addr}, `    lb: round_robin
    health_check: {interval: 50ms, timeout: 500ms, path: /healthz, expected_status: 200, healthy_threshold: 2, unhealthy_threshold: 2}
`))
	o := poolOrigin(t, gw, "pool")
	c := httpClient(t)

	healthy.Store(false)
	eventually(t, 5*time.Second, "failing health checks eject the instance", func() bool {
		return !instanceByAddr(o, sick.addr).Healthy()
	})
	before := hits.Load()
	for i := 0; i < 20; i++ {
		resp, body := get(t, c, "http://"+gw.addr+"/x")
		if resp.StatusCode != 200 || !strings.Contains(body, "fine") {
			t.Fatalf("request %d while one instance is unhealthy: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Fatalf("the unhealthy instance still got %d of 20 requests", n)
	}

	healthy.Store(true)
	eventually(t, 5*time.Second, "passing health checks restore the instance", func() bool {
		return instanceByAddr(o, sick.addr).Healthy()
	})
	before = hits.Load()
	for i := 0; i < 20; i++ {
		get(t, c, "http://"+gw.addr+"/x")
	}
	if n := hits.Load() - before; n < 5 {
		t.Fatalf("the restored instance got only %d of 20 requests", n)
	}
}

// An instance that leaves the configuration (or discovery) is drained: the
// request it is serving completes, and no new request goes to it.
func TestOriginRemovedInstanceIsDrainedNotCut(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var leavingHits atomic.Int64
	leaving := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		leavingHits.Add(1)
		if string(ctx.Path()) == "/slow" {
			entered <- struct{}{}
			<-release
		}
		ctx.SetBodyString("leaving")
	})
	staying := startOrigin(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("staying") })
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	gw := startGateway(t, poolConfig([]string{leaving.addr}, ""))
	c := httpClient(t)

	type result struct {
		status int
		body   string
	}
	inFlight := make(chan result, 1)
	go func() {
		resp, err := c.Get("http://" + gw.addr + "/slow")
		if err != nil {
			inFlight <- result{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		inFlight <- result{resp.StatusCode, string(b)}
	}()
	<-entered

	// The reload path: the registry gets the new instance list.
	cfg := origins.DefaultOriginConfig()
	cfg.Instances = []origins.InstanceConfig{{Address: staying.addr}}
	if err := gw.reg.Update(map[string]origins.OriginConfig{"pool": cfg}); err != nil {
		t.Fatal(err)
	}
	o := poolOrigin(t, gw, "pool")
	eventually(t, 2*time.Second, "the new instance set", func() bool {
		return len(o.Instances()) == 1 && o.Instances()[0].Addr() == staying.addr
	})
	before := leavingHits.Load()
	for i := 0; i < 10; i++ {
		resp, body := get(t, c, "http://"+gw.addr+"/fast")
		if resp.StatusCode != 200 || body != "staying" {
			t.Fatalf("request after removal: %d %q", resp.StatusCode, body)
		}
	}
	if n := leavingHits.Load() - before; n != 0 {
		t.Fatalf("the removed instance got %d new requests", n)
	}
	close(release)
	if r := <-inFlight; r.status != 200 || r.body != "leaving" {
		t.Fatalf("the request in flight on the removed instance was cut: %+v", r)
	}
}

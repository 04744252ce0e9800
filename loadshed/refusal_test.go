package loadshed

import (
	"testing"
	"time"
)

// A refusal is held (or its connection closed) only while the starvation controller sheds
// because of the gateway's own work, at most max_delayed at once; never for waits the
// neighbours cause, and not once the overload is over.
func TestStarvedRefusalOnlyForTheGatewaysOwnOverload(t *testing.T) {
	cfg := starvationConfig()
	cfg.Global.StarvedRefusals = StarvedRefusalConfig{Delay: 250 * time.Millisecond, MaxDelayed: 2, Close: true}
	g := newSimGateway(t, cfg)
	gl := g.s.Global()
	g.run(simTraffic(60), 5*time.Second) // steady, 40 % busy
	if d, ok, c := gl.StarvedRefusal(); d != 0 || ok || c {
		t.Fatalf("steady load: StarvedRefusal = %v, %v, %v; want nothing", d, ok, c)
	}
	g.run(simTraffic(1000), 5*time.Second) // 5x the core: the gateway's own overload
	var holds []bool
	for range 3 {
		d, ok, c := gl.StarvedRefusal()
		if !c {
			t.Fatal("own overload: connection not closed with close: true")
		}
		if ok && d != 250*time.Millisecond {
			t.Fatalf("held for %v, want 250ms", d)
		}
		holds = append(holds, ok)
	}
	if !holds[0] || !holds[1] || holds[2] || gl.Held() != 2 {
		t.Fatalf("holds %v with max_delayed 2 (%d held); want the first two only", holds, gl.Held())
	}
	if snap := gl.starvationSnapshot(); !snap.SelfStarved || snap.HeldRefusals != 2 {
		t.Fatalf("admin snapshot self_starved %v held_refusals %d; want true, 2", snap.SelfStarved, snap.HeldRefusals)
	}
	gl.ReleaseHeld()
	if _, ok, _ := gl.StarvedRefusal(); !ok {
		t.Fatal("a released hold was not granted again")
	}
	gl.ReleaseHeld()
	gl.ReleaseHeld()
	if gl.Held() != 0 {
		t.Fatalf("%d held after every release", gl.Held())
	}
	// The overload ends: once the cutoff is back at 100 nothing is held.
	g.run(simTraffic(60), 40*time.Second)
	if d, ok, c := gl.StarvedRefusal(); d != 0 || ok || c {
		t.Fatalf("after the overload: StarvedRefusal = %v, %v, %v; want nothing", d, ok, c)
	}
}

func TestStarvedRefusalNotForNeighboursWaits(t *testing.T) {
	cfg := starvationConfig()
	cfg.Global.StarvedRefusals = StarvedRefusalConfig{Delay: 250 * time.Millisecond, MaxDelayed: 100, Close: true}
	g := newSimGateway(t, cfg)
	gl := g.s.Global()
	g.neighbour = 80 * time.Millisecond // waits far past the threshold, the gateway 30 % busy
	uniform := map[int]float64{}
	for score := 1; score <= 100; score++ {
		uniform[score] = 3
	}
	shedding := false
	for range 30 {
		g.run(uniform, time.Second)
		shedding = shedding || gl.Decide(0).Cutoff < 100
		if d, ok, c := gl.StarvedRefusal(); d != 0 || ok || c {
			t.Fatalf("neighbours' waits: StarvedRefusal = %v, %v, %v; want nothing", d, ok, c)
		}
	}
	if !shedding {
		t.Fatal("the controller never shed: the test shows nothing")
	}
}

package origins

import (
	"testing"
	"time"
)

func TestLatencyEstimateFollowsObservations(t *testing.T) {
	cfg := DefaultOriginConfig()
	cfg.Instances = []InstanceConfig{{Address: "127.0.0.1:1"}}
	cfg.Latency.DefaultRTT = 30 * time.Millisecond
	reg, err := NewRegistry(map[string]OriginConfig{"a": cfg}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	o, _ := reg.Get("a")
	in := o.Instances()[0]
	if got := o.LatencyEstimate(in); got <= 0 || got > 30*time.Millisecond {
		t.Fatalf("seeded estimate = %v, want the default RTT decayed (0, 30ms]", got)
	}
	in.ewma.observe(o.now(), float64(400*time.Millisecond), o.pol.Load().tau)
	if got := o.LatencyEstimate(in); got < 300*time.Millisecond || got > 400*time.Millisecond {
		t.Fatalf("after a 400ms observation the estimate is %v", got)
	}
}

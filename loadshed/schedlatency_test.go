package loadshed

import (
	"math"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSchedHistogram is a cumulative scheduling-latency histogram the test adds waits to.
type fakeSchedHistogram struct {
	mu sync.Mutex
	h  metrics.Float64Histogram
}

func newFakeSchedHistogram() *fakeSchedHistogram {
	return &fakeSchedHistogram{h: metrics.Float64Histogram{
		Buckets: []float64{0, 0.001, 0.01, 0.05, 0.06, 0.2, math.Inf(1)},
		Counts:  make([]uint64, 6),
	}}
}

// add records n waits in the bucket that holds seconds.
func (f *fakeSchedHistogram) add(seconds float64, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.h.Counts {
		if seconds >= f.h.Buckets[i] && seconds < f.h.Buckets[i+1] {
			f.h.Counts[i] += n
			return
		}
	}
	panic("no bucket")
}

func (f *fakeSchedHistogram) read() *metrics.Float64Histogram {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.h
	c.Counts = append([]uint64(nil), f.h.Counts...)
	return &c
}

func TestQuantileOfDeltaReadsTheBucketOfTheRank(t *testing.T) {
	f := newFakeSchedHistogram()
	prev := append([]uint64(nil), f.read().Counts...)
	f.add(0.0005, 990)
	f.add(0.055, 10)
	h := f.read()
	if v, n := quantileOfDelta(h, prev, 0.99, 100); v != 0.001 || n != 1000 {
		t.Fatalf("p99 of 990 fast + 10 slow = %v over %d, want the fast bucket's bound 0.001 over 1000", v, n)
	}
	if v, _ := quantileOfDelta(h, prev, 0.995, 100); v != 0.06 {
		t.Fatalf("p99.5 = %v, want the slow bucket's upper bound 0.06", v)
	}
	if v, n := quantileOfDelta(h, prev, 0.99, 1001); v != 0 || n != 1000 {
		t.Fatalf("below min samples: %v over %d, want 0", v, n)
	}
	// Only what was added since prev counts.
	prev = append(prev[:0], h.Counts...)
	f.add(0.3, 5) // the open-ended bucket reads as its lower bound
	if v, n := quantileOfDelta(f.read(), prev, 0.5, 1); v != 0.2 || n != 5 {
		t.Fatalf("open bucket: %v over %d, want 0.2 over 5", v, n)
	}
}

func TestGlobalSchedLatencySignalShedsByPriority(t *testing.T) {
	cfg := crispConfig()
	cfg.Global.Signals.Inflight.Enabled = false
	cfg.Global.Signals.SchedLatency = SchedLatencySignalConfig{Enabled: true, Threshold: 20 * time.Millisecond,
		Max: 100 * time.Millisecond, Quantile: 0.99, SampleEvery: time.Second, MinSamples: 100}
	hist := newFakeSchedHistogram()
	s, clk := newTestShedder(t, cfg, WithSchedLatencySource(hist.read))
	signal := func() SignalSnapshot {
		for _, sig := range s.Snapshot().Global.Signals {
			if sig.Name == "sched_latency" {
				return sig
			}
		}
		t.Fatal("no sched_latency signal in the snapshot")
		return SignalSnapshot{}
	}
	g := s.Global()
	clk.advance(s, 100*time.Millisecond) // primes the sampler

	// A healthy second: waits well under a millisecond.
	hist.add(0.0005, 5000)
	for range 10 {
		clk.advance(s, 100*time.Millisecond)
	}
	if sig := signal(); sig.Value != 0.001 {
		t.Fatalf("healthy p99 = %v, want 0.001", sig.Value)
	}
	if d := g.Decide(100); d.Shed {
		t.Fatalf("healthy gateway shed: %+v", d)
	}

	// Starved: 5 % of the waits take 50-60 ms, so p99 = 60 ms, x = (60-20)/(100-20) = 0.5.
	hist.add(0.0005, 950)
	hist.add(0.055, 50)
	for range 10 {
		clk.advance(s, 100*time.Millisecond)
	}
	if sig := signal(); math.Abs(sig.Value-0.06) > 1e-12 {
		t.Fatalf("starved p99 = %v, want 0.06", sig.Value)
	}
	snap := s.Snapshot()
	if math.Abs(snap.Global.Overload-0.5) > 1e-9 {
		t.Fatalf("overload %v, want 0.5", snap.Global.Overload)
	}
	if d := g.Decide(100); !d.Shed || d.Scope != ScopeGlobal {
		t.Fatalf("least critical not shed while starved: %+v", d)
	}
	if d := g.Decide(0); d.Shed {
		t.Fatalf("score 0 shed: %+v", d)
	}

	// An idle period (too few wake-ups) says nothing: the signal falls back to 0.
	hist.add(0.055, 10)
	for range 10 {
		clk.advance(s, 100*time.Millisecond)
	}
	if sig := signal(); sig.Value != 0 {
		t.Fatalf("idle period read %v, want 0", sig.Value)
	}
}

func TestRuntimeSchedLatencyHistogramIsReadable(t *testing.T) {
	h := runtimeSchedLatency()
	if h == nil || len(h.Buckets) != len(h.Counts)+1 || len(h.Counts) == 0 {
		t.Fatalf("runtime %s: %+v", schedLatencyMetric, h)
	}
}

func TestSchedLatencyConfigErrorsNameTheKey(t *testing.T) {
	cfg := Default()
	cfg.Global.Signals.SchedLatency = SchedLatencySignalConfig{Enabled: true, Threshold: 50 * time.Millisecond,
		Max: 10 * time.Millisecond, Quantile: 1.5, SampleEvery: time.Millisecond, MinSamples: -1, MinCutoff: new(101.0)}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bad sched_latency accepted")
	}
	for _, key := range []string{"global.signals.sched_latency.max", "global.signals.sched_latency.quantile",
		"global.signals.sched_latency.sample_every", "global.signals.sched_latency.min_samples", "global.signals.sched_latency.min_cutoff"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

// Waits the gateway cannot shorten by shedding (neighbours taking the CPU) must not walk the
// cutoff into critical traffic: the signal stops at min_cutoff, whatever the waits.
func TestSchedLatencyNeverShedsAtOrBelowMinCutoff(t *testing.T) {
	cfg := Default() // the hold controller, as shipped
	cfg.Global.Signals.Inflight.Enabled = false
	cfg.Global.Signals.CPU.Enabled = false
	cfg.Global.Signals.SchedLatency = SchedLatencySignalConfig{Enabled: true, Threshold: 20 * time.Millisecond,
		Max: 100 * time.Millisecond, Quantile: 0.99, SampleEvery: 250 * time.Millisecond, MinSamples: 100}
	hist := newFakeSchedHistogram()
	s, clk := newTestShedder(t, cfg, WithSchedLatencySource(hist.read))
	g := s.Global()
	clk.advance(s, 10*time.Millisecond)
	// A minute of waits far past max, every period.
	for range 240 {
		hist.add(0.3, 1000)
		clk.advance(s, 250*time.Millisecond)
	}
	d := g.Decide(51)
	if !d.Shed {
		t.Fatalf("score 51 not shed under starvation: %+v", d)
	}
	if d.Cutoff < 50-1e-9 {
		t.Fatalf("cutoff %v below min_cutoff 50", d.Cutoff)
	}
	if d := g.Decide(50); d.Shed {
		t.Fatalf("score 50 shed by sched_latency with min_cutoff 50: %+v", d)
	}
	// Back to healthy waits: shedding backs off (at most 2 points a second) and stops.
	for range 120 {
		hist.add(0.0005, 1000)
		clk.advance(s, 250*time.Millisecond)
	}
	if d := g.Decide(100); d.Shed {
		t.Fatalf("still shedding after the waits recovered: %+v", d)
	}
}

func TestMeanOfDeltaReadsBucketMiddles(t *testing.T) {
	f := newFakeSchedHistogram()
	prev := append([]uint64(nil), f.read().Counts...)
	f.add(0.0005, 3) // bucket 0..1 ms: 0.5 ms each
	f.add(0.055, 1)  // bucket 50..60 ms: 55 ms
	if m := meanOfDelta(f.read(), prev); math.Abs(m-(3*0.0005+0.055)/4) > 1e-12 {
		t.Fatalf("mean %v, want %v", m, (3*0.0005+0.055)/4)
	}
	if m := meanOfDelta(f.read(), f.read().Counts); m != 0 {
		t.Fatalf("empty delta: mean %v, want 0", m)
	}
}

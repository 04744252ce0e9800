package loadshed

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// queueingOrigin models an origin with a fixed number of servers and a
// fixed service time that queues whatever exceeds them: the plant the
// origin scope's controller closes its loop over.
type queueingOrigin struct {
	servers []time.Duration // remaining service per busy server; 0 = idle
	service time.Duration
	queue   int
	served  int
}

func (q *queueingOrigin) admit() {
	for i, r := range q.servers {
		if r <= 0 {
			q.servers[i] = q.service
			return
		}
	}
	q.queue++
}

func (q *queueingOrigin) advance(dt time.Duration) {
	for i := range q.servers {
		left := dt
		for q.servers[i] > 0 && left > 0 {
			if q.servers[i] > left {
				q.servers[i] -= left
				break
			}
			left -= q.servers[i]
			q.servers[i] = 0
			q.served++
			if q.queue > 0 {
				q.queue--
				q.servers[i] = q.service
			}
		}
	}
}

func (q *queueingOrigin) inSystem() int64 {
	n := int64(q.queue)
	for _, r := range q.servers {
		if r > 0 {
			n++
		}
	}
	return n
}

type simClass struct {
	score int
	rate  float64 // per second
}

type simResult struct {
	cutoffs      []float64 // mean of every simulated second of the spike
	offered      map[int]int
	shed         map[int]int
	servedPerSec float64
}

// simulate runs the origin scope against a queueing origin of capacity
// servers x service for warm seconds of steady load and spike seconds of
// the given classes, with 10 ms ticks and Poisson arrivals. The learned
// limit is taken as 1.5 x capacity (what the adaptive limit settles at).
func simulate(t *testing.T, scope ScopeConfig, servers int, service time.Duration, steady, spike []simClass, warm, spikeSecs int) simResult {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	cfg := crispConfig()
	cfg.Interval = 10 * time.Millisecond
	cfg.Origin.ScopeConfig = scope
	s, clk := newTestShedder(t, cfg, WithRand(rng.Float64))
	q := &queueingOrigin{servers: make([]time.Duration, servers), service: service}
	limit := 1.5 * float64(servers)
	s.SetConcurrencySource(func(string) (OriginConcurrency, bool) {
		return OriginConcurrency{Awaiting: q.inSystem(), Limit: limit, Learned: true}, true
	})
	o := s.Origin("app")
	res := simResult{offered: map[int]int{}, shed: map[int]int{}}
	const tick = 10 * time.Millisecond
	poisson := func(mean float64) int {
		// Knuth's method is fine for the small means of one tick.
		l, k, p := math.Exp(-mean), 0, 1.0
		for {
			p *= rng.Float64()
			if p <= l {
				return k
			}
			k++
		}
	}
	served0 := 0
	for sec := 0; sec < warm+spikeSecs; sec++ {
		classes := steady
		if sec >= warm {
			classes = spike
		}
		if sec == warm {
			served0 = q.served
		}
		sum := 0.0
		for range int(time.Second / tick) {
			for _, c := range classes {
				for range poisson(c.rate * tick.Seconds()) {
					d := o.Decide(c.score)
					if sec >= warm {
						res.offered[c.score]++
						if d.Shed {
							res.shed[c.score]++
						}
					}
					if !d.Shed {
						q.admit()
					}
				}
			}
			q.advance(tick)
			clk.advance(s, tick)
			sum += o.Decide(0).Cutoff
		}
		if sec >= warm {
			res.cutoffs = append(res.cutoffs, sum/float64(time.Second/tick))
		}
	}
	res.servedPerSec = float64(q.served-served0) / float64(spikeSecs)
	return res
}

// The controller's acceptance in miniature: a 12x spike of low-priority
// traffic against origins of 60, 200 and 1000 req/s. Once settled the
// per-second cutoff moves at most 10 points from one second to the next,
// critical traffic is never shed, the origin stays at least 90 % busy, and
// bands are shed in order. The proportional mode (the behaviour before the
// controller) is run alongside for contrast.
func TestControllerHoldsSteadyCutoffUnderSpike(t *testing.T) {
	for _, servers := range []int{3, 10, 50} {
		f := float64(servers) / 10 // 10 servers x 50 ms = 200 req/s
		steady := []simClass{{10, 40 * f}, {82, 10 * f}, {85, 10 * f}, {95, 10 * f}}
		spike := []simClass{{10, 40 * f}, {82, 120 * f}, {85, 120 * f}, {95, 120 * f}}
		capacity := 20 * float64(servers)
		run := func(scope ScopeConfig) (simResult, float64) {
			r := simulate(t, scope, servers, 50*time.Millisecond, steady, spike, 5, 30)
			worst := 0.0
			for i := 5; i < len(r.cutoffs); i++ { // settled: 5 s into the spike
				worst = math.Max(worst, math.Abs(r.cutoffs[i]-r.cutoffs[i-1]))
			}
			return r, worst
		}
		hold, holdJump := run(Default().Origin.ScopeConfig)
		prop := Default().Origin.ScopeConfig
		prop.Controller.Mode = ModeProportional
		propRes, propJump := run(prop)
		t.Logf("capacity %.0f/s: hold served %.0f/s, largest move %.1f, shed %v of %v; proportional served %.0f/s, largest move %.1f, critical shed %d",
			capacity, hold.servedPerSec, holdJump, hold.shed, hold.offered, propRes.servedPerSec, propJump, propRes.shed[10])
		if holdJump > 10 {
			t.Errorf("capacity %.0f: settled cutoff moved %.1f points in one second, want <= 10 (%.1f)", capacity, holdJump, hold.cutoffs)
		}
		if hold.shed[10] > 0 {
			t.Errorf("capacity %.0f: critical requests shed: %d of %d", capacity, hold.shed[10], hold.offered[10])
		}
		if hold.servedPerSec < 0.9*capacity {
			t.Errorf("capacity %.0f: origin served %.0f/s, want >= 90%%", capacity, hold.servedPerSec)
		}
		share := func(score int) float64 { return float64(hold.shed[score]) / float64(hold.offered[score]) }
		for _, pair := range [][2]int{{82, 85}, {85, 95}} {
			if share(pair[0]) > share(pair[1]) {
				t.Errorf("capacity %.0f: score %d lost %.2f, more than score %d (%.2f)", capacity, pair[0], share(pair[0]), pair[1], share(pair[1]))
			}
		}
	}
}

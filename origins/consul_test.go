package origins

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/consulfake"
)

func consulOrigin(t *testing.T, fake *consulfake.Server, wait time.Duration, logs ...*syncBuffer) (*Registry, *Origin) {
	t.Helper()
	cfg := DefaultOriginConfig()
	cc := DefaultConsulConfig()
	cc.Address = "http://" + fake.Addr()
	cc.Service = "web"
	cc.Tag = "prod"
	cc.Datacenter = "dc1"
	cc.Wait = wait
	cc.BackoffMin = 20 * time.Millisecond
	cc.BackoffMax = 100 * time.Millisecond
	cfg.Consul = &cc
	log := discardLogger()
	if len(logs) > 0 {
		log = slog.New(slog.NewTextHandler(logs[0], nil))
	}
	r, err := NewRegistry(map[string]OriginConfig{"web": cfg}, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	o, _ := r.Get("web")
	select {
	case <-o.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("no first instance set from consul")
	}
	return r, o
}

func sortedAddrs(o *Origin) []string {
	return slices.Sorted(slices.Values(addrs(o.Instances())))
}

func reg(f *consulfake.Server, id, ip string, tags ...string) {
	f.Register("web", consulfake.Instance{ID: id, Node: "node-" + id, NodeIP: ip, Port: 8080, Tags: tags, Passing: true})
}

func TestConsulChangesPropagateWithinOneRoundTrip(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	reg(fake, "a", "10.0.0.1", "prod")
	reg(fake, "b", "10.0.0.2", "prod")
	reg(fake, "c", "10.0.0.3", "staging") // filtered by tag
	_, o := consulOrigin(t, fake, time.Minute)
	if got := sortedAddrs(o); !slices.Equal(got, []string{"10.0.0.1:8080", "10.0.0.2:8080"}) {
		t.Fatalf("initial set %v", got)
	}
	changes := make(chan Change, 16)
	cancel := o.Subscribe(func(c Change) { changes <- c })
	defer cancel()
	<-changes // current set

	// Each step must arrive within one blocking round trip: the watcher's pending
	// query returns at once (the wait is a minute) and no extra query is needed.
	// Once the previous change was delivered, a blocked query at the fake is
	// the watcher's re-armed one (counting queries instead raced with a
	// re-arm that came before the count was read).
	var last int64
	step := func(name string, mutate func(), want []string) {
		t.Helper()
		eventually(t, 2*time.Second, "watcher blocked", func() bool { return fake.Blocked() > 0 })
		before := fake.Queries()
		start := time.Now()
		mutate()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no change delivered", name)
		}
		took := time.Since(start)
		last = fake.Queries()
		if q := last - before; q > 1 {
			t.Fatalf("%s: took %d queries, want the pending one only", name, q)
		}
		if got := sortedAddrs(o); !slices.Equal(got, want) {
			t.Fatalf("%s: got %v want %v", name, got, want)
		}
		t.Logf("%s propagated in %v", name, took)
	}
	step("add", func() { reg(fake, "d", "10.0.0.4", "prod") },
		[]string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.4:8080"})
	step("fail", func() { fake.SetPassing("web", "a", false) },
		[]string{"10.0.0.2:8080", "10.0.0.4:8080"})
	step("remove", func() { fake.Deregister("web", "b") },
		[]string{"10.0.0.4:8080"})
}

func TestConsulOutageKeepsLastSet(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	reg(fake, "a", "10.0.0.1", "prod")
	reg(fake, "b", "10.0.0.2", "prod")
	logs := &syncBuffer{}
	_, o := consulOrigin(t, fake, 200*time.Millisecond, logs)
	want := []string{"10.0.0.1:8080", "10.0.0.2:8080"}

	fake.SetOutage(consulfake.OutageError)
	before := fake.Queries()
	// Several failing queries (with backoff) must leave the set alone.
	eventually(t, 5*time.Second, "watcher to hit the outage a few times", func() bool { return fake.Queries() >= before+3 })
	if got := sortedAddrs(o); !slices.Equal(got, want) {
		t.Fatalf("outage changed the set: %v", got)
	}
	if _, done, err := o.Pick(nil); err != nil {
		t.Fatalf("must keep serving during the outage: %v", err)
	} else {
		done.Done(Result{Outcome: OutcomeSuccess})
	}
	// A change made while Consul is down shows up after it recovers.
	reg(fake, "c", "10.0.0.3", "prod")
	fake.SetOutage(consulfake.OutageNone)
	eventually(t, 5*time.Second, "recovery", func() bool { return len(o.Instances()) == 3 })

	// Consul going away entirely (connection refused) also keeps the set.
	failures := strings.Count(logs.String(), "consul query failed")
	fake.Close()
	eventually(t, 5*time.Second, "queries to the closed agent to fail", func() bool {
		return strings.Count(logs.String(), "consul query failed") >= failures+3
	})
	if len(o.Instances()) != 3 {
		t.Fatalf("closing consul dropped instances: %v", sortedAddrs(o))
	}
}

func TestConsulIndexReset(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	for i := 0; i < 5; i++ {
		reg(fake, "a", "10.0.0.1", "prod")
	}
	_, o := consulOrigin(t, fake, 150*time.Millisecond)
	// After a restore the index drops below what the watcher waits on. Consul answers
	// at the end of the wait with the lower index; the watcher must reset to 0 rather
	// than block on an index that may be far in the future.
	fake.ResetIndex("web", 2)
	reg(fake, "b", "10.0.0.2", "prod") // index 3, still below the watcher's
	eventually(t, 3*time.Second, "new instance after index reset", func() bool { return len(o.Instances()) == 2 })
	reg(fake, "c", "10.0.0.3", "prod")
	eventually(t, 3*time.Second, "later change after reset", func() bool { return len(o.Instances()) == 3 })
}

func TestBackoffBounds(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for n := 1; n < 20; n++ {
		d := backoff(lo, hi, n)
		ceil := min(lo<<(n-1), hi)
		if n > 5 {
			ceil = hi
		}
		if d < ceil/2 || d > ceil {
			t.Fatalf("failures=%d: %v outside [%v, %v]", n, d, ceil/2, ceil)
		}
	}
}

func TestSwitchConsulToStaticAndBack(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	reg(fake, "a", "10.0.0.1", "prod")
	r, o := consulOrigin(t, fake, time.Minute)
	consulCfg := o.Config()

	static := DefaultOriginConfig()
	static.Instances = []InstanceConfig{{Address: "10.9.9.9:80"}}
	if err := r.Update(map[string]OriginConfig{"web": static}); err != nil {
		t.Fatal(err)
	}
	if o.bg.discovery.cancel != nil {
		t.Fatal("consul watcher must stop when switching to static")
	}
	reg(fake, "b", "10.0.0.2", "prod")
	if got := sortedAddrs(o); !slices.Equal(got, []string{"10.9.9.9:80"}) {
		t.Fatalf("static set: %v", got)
	}
	if err := r.Update(map[string]OriginConfig{"web": consulCfg}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "consul set after switching back", func() bool {
		return slices.Equal(sortedAddrs(o), []string{"10.0.0.1:8080", "10.0.0.2:8080"})
	})
}

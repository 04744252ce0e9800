package origins

import (
	"slices"
	"testing"
)

func TestInstancesKeepIdentityAcrossSwaps(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80", "10.0.0.2:80"), nil)
	var changes []Change
	cancel := o.Subscribe(func(c Change) { changes = append(changes, c) })
	defer cancel()
	if len(changes) != 1 || len(changes[0].Added) != 2 {
		t.Fatalf("subscribe must deliver current set first: %+v", changes)
	}
	a, b := byAddr(o, "10.0.0.1:80"), byAddr(o, "10.0.0.2:80")

	// Hold an attempt on a so its drain waits for it.
	var inA Ticket
	for inA.Instance() == nil {
		in, done, err := o.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		if in == a {
			inA = done
		} else {
			done.Done(Result{Outcome: OutcomeSuccess})
		}
	}
	b.ewma.observe(o.now(), 12345, o.pol.Load().tau)
	bCost := b.ewma.cost.Load()

	o.SetInstances([]InstanceConfig{{Address: "10.0.0.2:80", Weight: 3}, {Address: "10.0.0.3:80"}})
	if byAddr(o, "10.0.0.2:80") != b || b.Weight() != 3 || b.ewma.cost.Load() != bCost {
		t.Fatal("b must keep its Instance, EWMA and get the new weight")
	}
	last := changes[len(changes)-1]
	if len(last.Added) != 1 || last.Added[0].Addr() != "10.0.0.3:80" || len(last.Removed) != 1 || last.Removed[0] != a {
		t.Fatalf("unexpected change %+v", last)
	}
	if !a.Retired() {
		t.Fatal("a must be retired")
	}
	select {
	case <-a.Drained():
		t.Fatal("a drained while an attempt is in flight")
	default:
	}
	for i := 0; i < 50; i++ {
		in, done, err := o.Pick(nil)
		if err != nil || in == a {
			t.Fatalf("retired instance picked (%v)", err)
		}
		done.Done(Result{Outcome: OutcomeSuccess})
	}
	inA.Done(Result{Outcome: OutcomeSuccess})
	select {
	case <-a.Drained():
	default:
		t.Fatal("a must be drained once its last attempt finished")
	}
}

func TestDrainedImmediatelyWhenIdle(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80", "10.0.0.2:80"), nil)
	a := byAddr(o, "10.0.0.1:80")
	o.SetInstances([]InstanceConfig{{Address: "10.0.0.2:80"}})
	select {
	case <-a.Drained():
	default:
		t.Fatal("idle removed instance must drain at once")
	}
}

func TestSubscribeCancel(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80"), nil)
	n := 0
	cancel := o.Subscribe(func(Change) { n++ })
	cancel()
	o.SetInstances([]InstanceConfig{{Address: "10.0.0.9:80"}})
	if n != 1 {
		t.Fatalf("canceled subscriber called %d times", n)
	}
}

func TestDuplicateAndEmptyAddressesIgnored(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80"), nil)
	o.SetInstances([]InstanceConfig{{Address: "10.0.0.1:80"}, {Address: ""}, {Address: "10.0.0.1:80", Weight: 5}})
	got := addrs(o.Instances())
	if !slices.Equal(got, []string{"10.0.0.1:80"}) || o.Instances()[0].Weight() != 1 {
		t.Fatalf("got %v weight %d", got, o.Instances()[0].Weight())
	}
}

func TestAttachment(t *testing.T) {
	o := testOrigin(t, staticConfig("10.0.0.1:80"), nil)
	in := o.Instances()[0]
	if in.Attachment() != nil {
		t.Fatal("no attachment yet")
	}
	in.SetAttachment("pool")
	if in.Attachment() != "pool" {
		t.Fatal("attachment lost")
	}
}

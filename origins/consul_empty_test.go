package origins

import (
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/consulfake"
)

// consulOriginWith is consulOrigin with allow_empty and the discovery hook.
func consulOriginWith(t *testing.T, fake *consulfake.Server, allowEmpty bool, kept *atomic.Int64, logs *syncBuffer) (*Registry, *Origin) {
	t.Helper()
	cfg := consulEmptyConfig(fake, allowEmpty, "")
	r, err := NewRegistry(map[string]OriginConfig{"web": cfg}, Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Hooks:  Hooks{OnDiscoveryEmptyKept: func(origin string) { kept.Add(1) }},
	})
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

func consulEmptyConfig(fake *consulfake.Server, allowEmpty bool, token string) OriginConfig {
	cfg := DefaultOriginConfig()
	cc := DefaultConsulConfig()
	cc.Address = "http://" + fake.Addr()
	cc.Service = "web"
	cc.Wait = 100 * time.Millisecond
	cc.BackoffMin = 20 * time.Millisecond
	cc.BackoffMax = 100 * time.Millisecond
	cc.AllowEmpty = allowEmpty
	cc.Token = token
	cfg.Consul = &cc
	return cfg
}

// Issue 10 item 12: an ACL mistake (Consul answers 200 with everything
// filtered out, as the fake now does like real Consul) or every check
// failing at once must not empty the origin: the last set stays, with a
// log line and a counted event, unless allow_empty says otherwise.
func TestConsulDropToZeroKeepsLastSet(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	reg(fake, "a", "10.0.0.1")
	reg(fake, "b", "10.0.0.2")
	var kept atomic.Int64
	logs := &syncBuffer{}
	fake.RequireToken("good")
	fake.AddToken("limited", "billing") // a valid token without service:read on web
	r, o := consulOriginWith(t, fake, false, &kept, logs)
	if err := r.Update(map[string]OriginConfig{"web": consulEmptyConfig(fake, false, "good")}); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1:8080", "10.0.0.2:8080"}
	eventually(t, 5*time.Second, "the instances under the good token", func() bool { return slices.Equal(sortedAddrs(o), want) })

	// A reload switches to a token that may not read the service: Consul
	// answers 200 with everything filtered out.
	if err := r.Update(map[string]OriginConfig{"web": consulEmptyConfig(fake, false, "limited")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the ACL-filtered answer to be seen", func() bool { return kept.Load() >= 1 })
	if got := sortedAddrs(o); !slices.Equal(got, want) {
		t.Fatalf("an ACL-filtered empty answer emptied the origin: %v", got)
	}
	if !strings.Contains(logs.String(), "filtered the service's instances out by ACL") {
		t.Errorf("no ACL hint in the log:\n%s", logs)
	}

	// Every check failing at once: empty passing list.
	fake.RequireToken("")
	if err := r.Update(map[string]OriginConfig{"web": consulEmptyConfig(fake, false, "")}); err != nil {
		t.Fatal(err)
	}
	before := kept.Load()
	fake.SetAllPassing("web", false)
	eventually(t, 5*time.Second, "the empty passing list to be seen", func() bool { return kept.Load() > before })
	if got := sortedAddrs(o); !slices.Equal(got, want) {
		t.Fatalf("an empty passing list emptied the origin: %v", got)
	}
	if _, done, err := o.Pick(nil); err != nil {
		t.Fatalf("the kept set must serve: %v", err)
	} else {
		done.Done(Result{Outcome: OutcomeSuccess})
	}
	// A real, non-empty change is applied as usual.
	fake.SetPassing("web", "b", true)
	eventually(t, 5*time.Second, "recovery to one passing instance", func() bool {
		return slices.Equal(sortedAddrs(o), []string{"10.0.0.2:8080"})
	})
}

func TestConsulAllowEmptyAppliesAnEmptySet(t *testing.T) {
	fake, err := consulfake.New("dc1")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	reg(fake, "a", "10.0.0.1")
	var kept atomic.Int64
	_, o := consulOriginWith(t, fake, true, &kept, &syncBuffer{})
	fake.SetPassing("web", "a", false)
	eventually(t, 5*time.Second, "the empty set to be applied", func() bool { return len(o.Instances()) == 0 })
	if kept.Load() != 0 {
		t.Errorf("allow_empty: kept %d times", kept.Load())
	}
}

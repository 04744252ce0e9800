package origins

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

// feedOptions are the options of the test-only "feed" discovery source:
// its watcher applies every list sent on the channel registered as Channel.
type feedOptions struct {
	Channel string `mapstructure:"channel"`
	Weight  int    `mapstructure:"weight"`
}

// feeds are the channels feed watchers read, by name; each watcher closes
// its channel's stop signal when its context ends.
var feeds = struct {
	sync.Mutex
	lists   map[string]chan []string
	stopped map[string]chan struct{}
}{lists: map[string]chan []string{}, stopped: map[string]chan struct{}{}}

func newFeed(name string) (chan []string, chan struct{}) {
	feeds.Lock()
	defer feeds.Unlock()
	feeds.lists[name], feeds.stopped[name] = make(chan []string), make(chan struct{})
	return feeds.lists[name], feeds.stopped[name]
}

var feedSource = &discoverySource{
	name: "feed",
	key:  "feed",
	decode: func(raw any, cfg *OriginConfig) error {
		opts := feedOptions{Weight: 7}
		if err := decode.Decode(raw, &opts); err != nil {
			return err
		}
		cfg.setDiscovery("feed", opts)
		return nil
	},
	validate: func(opts any, fe *decode.Errors, at string) {
		if opts.(feedOptions).Channel == "" {
			fe.Add(at+".channel", "required")
		}
	},
	start: func(opts any, o *Origin, _ discoveryEnv) (func(context.Context), error) {
		fo := opts.(feedOptions)
		feeds.Lock()
		lists, stopped := feeds.lists[fo.Channel], feeds.stopped[fo.Channel]
		feeds.Unlock()
		return func(ctx context.Context) {
			defer close(stopped)
			for {
				select {
				case <-ctx.Done():
					return
				case addrs := <-lists:
					list := make([]InstanceConfig, len(addrs))
					for i, a := range addrs {
						list[i] = InstanceConfig{Address: a, Weight: fo.Weight}
					}
					o.SetInstances(list)
				}
			}
		}, nil
	},
}

func init() { registerDiscoverySource(feedSource) }

// A source kind the registry does not know about, registered by name,
// decodes its own block, drives the origin's instances, and is stopped
// when a reload moves the origin to another source.
func TestRegisteredDiscoverySourceDrivesInstances(t *testing.T) {
	lists, stopped := newFeed("t1")
	cfgs, err := DecodeOrigins("origins", map[string]any{
		"web": map[string]any{"feed": map[string]any{"channel": "t1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfgs["web"].Discovery["feed"]; got != (feedOptions{Channel: "t1", Weight: 7}) {
		t.Fatalf("feed options decoded over their defaults: got %+v", got)
	}
	r, err := NewRegistry(cfgs, Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o, _ := r.Get("web")
	if n := len(o.Instances()); n != 0 {
		t.Fatalf("instances before the feed said anything: %d", n)
	}

	lists <- []string{"10.0.0.2:80", "10.0.0.1:80"}
	eventually(t, 5*time.Second, "the fed instances", func() bool {
		return slices.Equal(sortedAddrs(o), []string{"10.0.0.1:80", "10.0.0.2:80"})
	})
	if w := byAddr(o, "10.0.0.1:80").Weight(); w != 7 {
		t.Errorf("weight from the source's options: got %d, want 7", w)
	}
	lists <- []string{"10.0.0.3:80"}
	eventually(t, 5*time.Second, "the second fed set", func() bool {
		return slices.Equal(sortedAddrs(o), []string{"10.0.0.3:80"})
	})

	// A reload to a static list stops the watcher before applying the list.
	static := DefaultOriginConfig()
	static.Instances = []InstanceConfig{{Address: "10.0.0.9:80"}}
	if err := r.Update(map[string]OriginConfig{"web": static}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the feed watcher still runs after the origin moved to a static list")
	}
	if got := sortedAddrs(o); !slices.Equal(got, []string{"10.0.0.9:80"}) {
		t.Fatalf("static list after the reload: got %v", got)
	}
}

func TestDiscoverySourceValidation(t *testing.T) {
	both := DefaultOriginConfig()
	both.Instances = []InstanceConfig{{Address: "10.0.0.1:80"}}
	both.setDiscovery("feed", feedOptions{})
	err := both.Validate()
	for _, want := range []string{"instances: set either instances or feed, not both", "feed.channel: required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
	neither := DefaultOriginConfig().Validate()
	if want := "instances: at least one instance is required unless consul or feed is set"; neither == nil || !strings.Contains(neither.Error(), want) {
		t.Errorf("want %q, got %v", want, neither)
	}
	_, err = DecodeOrigins("origins", map[string]any{"web": map[string]any{"feed": map[string]any{"chanel": "x"}}})
	if err == nil || !strings.Contains(err.Error(), "origins.web.feed") || !strings.Contains(err.Error(), "chanel") {
		t.Errorf("unknown key in a source's block: got %v", err)
	}
}

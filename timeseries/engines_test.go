package timeseries

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/floodgate-dev/floodgate/timeseries/pebbleengine"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// recordingKind is a test engine kind ("second-pebble"): a pebble engine of its own, which
// records the namespaces it was opened and reconfigured with.
type recordingKind struct {
	mu         sync.Mutex
	dir        string
	opened     map[string]EngineNamespace
	configured map[string]EngineNamespace
}

var secondPebble = &recordingKind{}

type recordingEngine struct {
	storage.Engine
	kind *recordingKind
}

func (r *recordingEngine) ConfigureNamespaces(_ context.Context, ns map[string]EngineNamespace) error {
	r.kind.mu.Lock()
	defer r.kind.mu.Unlock()
	r.kind.configured = ns
	return nil
}

func init() {
	RegisterEngine("second-pebble", EngineKind{
		ValidateOptions: func(o map[string]any) error {
			if o["bad"] != nil {
				return errors.New("bad: not allowed")
			}
			return nil
		},
		ValidateNamespace: func(map[string]any) error { return nil },
		Open: func(_ context.Context, _ map[string]any, ns map[string]EngineNamespace, _ func(string, ...any)) (storage.Engine, error) {
			secondPebble.mu.Lock()
			defer secondPebble.mu.Unlock()
			secondPebble.opened = ns
			e, err := pebbleengine.Open(secondPebble.dir, pebbleengine.Options{CacheBytes: 1 << 20, MemTableBytes: 1 << 20})
			if err != nil {
				return nil, err
			}
			return &recordingEngine{Engine: e, kind: secondPebble}, nil
		},
	})
}

// Open routes each namespace to the engine it selects; reload may add namespaces on engines
// in use but not switch a namespace's engine.
func TestOpenRoutesNamespacesToTheirEngine(t *testing.T) {
	secondPebble.dir = t.TempDir()
	cfg := testConfig()
	other := testNamespace()
	other.Engine = "second-pebble"
	other.EngineOptions = map[string]any{"k": "v"}
	cfg.Namespaces["other"] = other
	clk := newClock(baseTime)
	svc, err := Open(t.TempDir(), cfg, WithClock(clk.now), WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	if _, ok := secondPebble.opened["other"]; !ok || len(secondPebble.opened) != 1 || secondPebble.opened["other"].Options["k"] != "v" {
		t.Fatalf("second engine opened with %+v, want namespace other only", secondPebble.opened)
	}
	router, ok := svc.engine.(*engineRouter)
	if !ok {
		t.Fatalf("service engine is %T, want the router", svc.engine)
	}
	for _, ns := range []string{"ns", "other"} {
		body := `{"namespace":"` + ns + `","events":[{"timeSeriesId":"a","eventTime":"` + ts(baseTime) + `","eventId":"x","eventItems":[]}]}`
		if st, resp := svc.Handle(context.Background(), OpWriteSync, []byte(body)); st != 200 {
			t.Fatalf("write %s: %d %s", ns, st, resp)
		}
	}
	count := func(e storage.Engine, ns string) int {
		list, err := e.Slices(context.Background(), ns)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	if count(router.embedded, "ns") != 1 || count(router.embedded, "other") != 0 || count(router.opened["second-pebble"], "other") != 1 || count(router.opened["second-pebble"], "ns") != 0 {
		t.Fatal("a namespace's writes reached another engine than the one it selects")
	}

	moved := cloneConfig(cfg)
	ns := moved.Namespaces["ns"]
	ns.Engine = "second-pebble"
	moved.Namespaces["ns"] = ns
	if err := svc.Reconfigure(moved); err == nil || !strings.Contains(err.Error(), "namespaces.ns.engine: cannot change while the service runs") {
		t.Fatalf("switching a namespace's engine on reload: %v", err)
	}
	added := cloneConfig(cfg)
	added.Namespaces["third"] = other
	if err := svc.Reconfigure(added); err != nil {
		t.Fatal(err)
	}
	if _, ok := secondPebble.configured["third"]; !ok {
		t.Fatalf("engine not told about the added namespace: %+v", secondPebble.configured)
	}
}

func TestEngineSelectionErrorsNameKeys(t *testing.T) {
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.Engine = "nope"
	cfg.Namespaces["ns"] = ns
	cfg.Engines = map[string]map[string]any{"second-pebble": {"bad": 1}}
	cfg.ApplyDefaults()
	err := cfg.Validate()
	for _, want := range []string{`namespaces.ns.engine: unknown engine "nope"`, "engines.second-pebble.bad: not allowed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// With only the embedded engine in use, Open serves from pebble directly and a reload cannot
// select an engine that was not opened.
func TestEmbeddedOnlyNeedsRestartForAnotherEngine(t *testing.T) {
	svc, err := Open(t.TempDir(), testConfig(), WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	if _, ok := svc.engine.(*pebbleengine.Engine); !ok {
		t.Fatalf("engine is %T, want pebble", svc.engine)
	}
	cfg := testConfig()
	ns := cfg.Namespaces["ns"]
	ns.Engine = "second-pebble"
	cfg.Namespaces["ns"] = ns
	if err := svc.Reconfigure(cfg); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("selecting a new engine on reload: %v", err)
	}
}

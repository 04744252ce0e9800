package filters

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

type limitOptions struct {
	Rate    int             `mapstructure:"rate"`
	Window  time.Duration   `mapstructure:"window"`
	MaxBody decode.ByteSize `mapstructure:"max_body"`
	Header  string          `mapstructure:"header"`
	Paths   []string        `mapstructure:"paths"`
}

func (o *limitOptions) Validate() error {
	if o.Rate <= 0 {
		return fmt.Errorf("rate: must be greater than zero, got %d", o.Rate)
	}
	if o.Window < time.Millisecond {
		return errors.New("window: must be at least 1ms")
	}
	return nil
}

type limitFilter struct {
	testFilter
	opts limitOptions
	env  *Env
}

func newTestRegistry(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry()
	RegisterIn(r, "limit",
		func() limitOptions { return limitOptions{Rate: 100, Window: time.Second, Header: "X-Limit"} },
		func(env *Env, o limitOptions) (Filter, error) {
			return &limitFilter{testFilter: testFilter{name: "limit", stage: Inbound}, opts: o, env: env}, nil
		})
	RegisterIn(r, "auth", func() struct{} { return struct{}{} },
		func(env *Env, _ struct{}) (Filter, error) {
			return nil, errors.New("no key store configured")
		})
	return r
}

func testEnv(path string) *Env {
	return &Env{Path: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Services: &Services{}}
}

func TestRegistryBuildTypedOptions(t *testing.T) {
	r := newTestRegistry(t)
	env := testEnv("routes[0].filters[1]")
	f, err := r.Build(env, "limit", map[string]any{
		"rate":     7,
		"window":   "250ms",
		"max_body": "1MiB",
		"paths":    []any{"/a", "/b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	lf, ok := f.(*limitFilter)
	if !ok {
		t.Fatalf("built %T", f)
	}
	o := lf.opts
	if o.Rate != 7 || o.Window != 250*time.Millisecond || o.MaxBody != 1<<20 || len(o.Paths) != 2 {
		t.Fatalf("options %+v", o)
	}
	if o.Header != "X-Limit" {
		t.Fatalf("default for an unset option lost: %q", o.Header)
	}
	if lf.env != env {
		t.Fatal("factory did not get the Env")
	}

	// No options at all means the defaults, validated.
	f, err = r.Build(env, "limit", nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := f.(*limitFilter).opts; o.Rate != 100 || o.Window != time.Second {
		t.Fatalf("defaults %+v", o)
	}
}

func TestRegistryErrorsNameKeyPath(t *testing.T) {
	r := newTestRegistry(t)
	tests := []struct {
		name    string
		path    string
		filter  string
		options map[string]any
		want    []string
	}{
		{"unknown filter", "routes[2].filters[0]", "limitt", nil,
			[]string{`routes[2].filters[0].name: unknown filter "limitt" (registered: auth, limit)`}},
		{"unknown option", "filters[1]", "limit", map[string]any{"rate": 1, "burts": 5},
			[]string{"filters[1].options.burts: unknown key"}},
		{"wrong option type", "routes[0].filters[0]", "limit", map[string]any{"rate": "lots"},
			[]string{"routes[0].filters[0].options.rate: ", `"lots"`}},
		{"bare number duration", "routes[0].filters[0]", "limit", map[string]any{"window": 5},
			[]string{"routes[0].filters[0].options.window: ", "needs a unit"}},
		{"bad size", "routes[0].filters[0]", "limit", map[string]any{"max_body": "huge"},
			[]string{"routes[0].filters[0].options.max_body: "}},
		{"validate", "routes[3].filters[2]", "limit", map[string]any{"rate": 0},
			[]string{"routes[3].filters[2].options.rate: must be greater than zero, got 0"}},
		{"validate second rule", "filters[0]", "limit", map[string]any{"window": "1us"},
			[]string{"filters[0].options.window: must be at least 1ms"}},
		{"factory error", "filters[4]", "auth", nil,
			[]string{"filters[4]: no key store configured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := r.Build(testEnv(tt.path), tt.filter, tt.options)
			if err == nil {
				t.Fatalf("built %v, want an error", f)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestRegistryNames(t *testing.T) {
	r := newTestRegistry(t)
	if got := strings.Join(r.Names(), ","); got != "auth,limit" {
		t.Fatalf("Names() = %s", got)
	}
	if n := NewRegistry().Names(); len(n) != 0 {
		t.Fatalf("empty registry has %v", n)
	}
}

func TestRegisterPanicsOnProgrammingErrors(t *testing.T) {
	r := newTestRegistry(t)
	noop := func(*Env, struct{}) (Filter, error) { return nil, nil }
	defaults := func() struct{} { return struct{}{} }
	for _, tc := range []struct {
		name string
		want string
	}{
		{"limit", `"limit" registered twice`},
		{"", "invalid filter name"},
		{"two words", "invalid filter name"},
	} {
		func() {
			defer func() {
				rec := recover()
				if rec == nil || !strings.Contains(fmt.Sprint(rec), tc.want) {
					t.Errorf("RegisterIn(%q) recovered %v, want a panic containing %q", tc.name, rec, tc.want)
				}
			}()
			RegisterIn(r, tc.name, defaults, noop)
		}()
	}
	// The failed registration left the original in place.
	if _, err := r.Build(testEnv("filters[0]"), "limit", nil); err != nil {
		t.Fatal(err)
	}
}

// ptrOptions has its Validate on the pointer, and the factory takes
// options by pointer; validation must still run.
type ptrOptions struct {
	Size int `mapstructure:"size"`
}

func (o *ptrOptions) Validate() error {
	if o.Size > 10 {
		return errors.New("size: must be at most 10")
	}
	return nil
}

func TestRegistryValidatesPointerOptions(t *testing.T) {
	r := NewRegistry()
	RegisterIn(r, "ptr", func() *ptrOptions { return &ptrOptions{Size: 1} },
		func(env *Env, o *ptrOptions) (Filter, error) {
			return &testFilter{name: fmt.Sprintf("ptr-%d", o.Size), stage: Inbound}, nil
		})
	f, err := r.Build(testEnv("filters[0]"), "ptr", map[string]any{"size": 5})
	if err != nil || f.Name() != "ptr-5" {
		t.Fatalf("built %v, %v", f, err)
	}
	_, err = r.Build(testEnv("filters[0]"), "ptr", map[string]any{"size": 50})
	if err == nil || !strings.Contains(err.Error(), "filters[0].options.size: must be at most 10") {
		t.Fatalf("err = %v", err)
	}
}

func TestRegistryBuildsIndependentInstances(t *testing.T) {
	r := newTestRegistry(t)
	a, err := r.Build(testEnv("filters[0]"), "limit", map[string]any{"rate": 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Build(testEnv("filters[1]"), "limit", map[string]any{"rate": 2})
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a.(*limitFilter).opts.Rate != 1 || b.(*limitFilter).opts.Rate != 2 {
		t.Fatal("instances share options")
	}
}

func TestDefaultRegistryRegister(t *testing.T) {
	const name = "filters-test-default-registry"
	// Default is process-wide; with -count=N this test runs more than once.
	if !slices.Contains(Default.Names(), name) {
		Register(name, func() struct{} { return struct{}{} },
			func(*Env, struct{}) (Filter, error) { return &testFilter{name: name, stage: Outbound}, nil })
	}
	f, err := Default.Build(testEnv("filters[0]"), name, nil)
	if err != nil || f.Name() != name {
		t.Fatalf("built %v, %v", f, err)
	}
}

func TestRegistryConcurrentBuild(t *testing.T) {
	r := newTestRegistry(t)
	done := make(chan error)
	for i := 0; i < 8; i++ {
		go func(i int) {
			_, err := r.Build(testEnv(fmt.Sprintf("filters[%d]", i)), "limit", map[string]any{"rate": i + 1})
			done <- err
		}(i)
	}
	RegisterIn(r, "late", func() struct{} { return struct{}{} },
		func(*Env, struct{}) (Filter, error) { return &testFilter{name: "late"}, nil })
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

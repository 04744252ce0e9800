package decode

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

type envInner struct {
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	Size              ByteSize      `mapstructure:"size"`
	Enabled           *bool         `mapstructure:"enabled"`
	List              []int         `mapstructure:"list"`
}

type envItem struct {
	Name string         `mapstructure:"name"`
	Rest map[string]any `mapstructure:",remain"`
}

type envSchema struct {
	Server  envInner            `mapstructure:"server"`
	Origins map[string]envInner `mapstructure:"origins"`
	Items   []envItem           `mapstructure:"items"`
	Options map[string]any      `mapstructure:"options"`
}

func TestEnvOverridesReachEveryKind(t *testing.T) {
	tree := map[string]any{
		"origins": map[string]any{"users_v2": map[string]any{"size": "1MiB"}},
		"items":   []any{map[string]any{"name": "a", "static": map[string]any{"status": 200}}},
	}
	env := []string{
		"FG_SERVER_READ_HEADER_TIMEOUT=3s",
		"FG_SERVER_ENABLED=false",
		"FG_SERVER_LIST=1,2",
		"FG_ORIGINS_USERS_V2_SIZE=2MiB",
		"FG_ORIGINS_UNKNOWN_SIZE=2MiB",
		"FG_ITEMS_0_NAME=b",
		"FG_ITEMS_0_STATIC_STATUS=204",
		"FG_ITEMS_1_NAME=c",
		"FG_OPTIONS_SAMPLE_SUCCESSES=0.5",
		"FG_CONFIG=/etc/x.yaml",
		"OTHER=1",
	}
	applied, unmatched := EnvOverrides(tree, reflect.TypeFor[envSchema](), "FG", env)
	wantApplied := []string{"items[0].name", "items[0].static.status", "options.sample_successes",
		"origins.users_v2.size", "server.enabled", "server.list", "server.read_header_timeout"}
	slices.Sort(applied)
	if !slices.Equal(applied, wantApplied) {
		t.Errorf("applied %v, want %v", applied, wantApplied)
	}
	if want := []string{"FG_CONFIG", "FG_ITEMS_1_NAME", "FG_ORIGINS_UNKNOWN_SIZE"}; !slices.Equal(unmatched, want) {
		t.Errorf("unmatched %v, want %v", unmatched, want)
	}
	var got envSchema
	if err := Decode(tree, &got); err != nil {
		t.Fatal(err)
	}
	if got.Server.ReadHeaderTimeout != 3*time.Second || got.Server.Enabled == nil || *got.Server.Enabled ||
		!slices.Equal(got.Server.List, []int{1, 2}) || got.Origins["users_v2"].Size != 2<<20 ||
		got.Items[0].Name != "b" || got.Items[0].Rest["static"].(map[string]any)["status"] != "204" ||
		got.Options["sample_successes"] != "0.5" {
		t.Errorf("decoded %+v", got)
	}
}

func TestEnvKeysListsStructScalars(t *testing.T) {
	got := EnvKeys(reflect.TypeFor[envSchema]())
	want := []string{"server.read_header_timeout", "server.size", "server.enabled", "server.list"}
	if !slices.Equal(got, want) {
		t.Errorf("EnvKeys = %v, want %v", got, want)
	}
}

func TestTreeUsesYAMLKeysAndUnits(t *testing.T) {
	on := true
	v := envSchema{
		Server:  envInner{ReadHeaderTimeout: 1500 * time.Millisecond, Size: 4 << 20, Enabled: &on},
		Origins: map[string]envInner{"u": {}},
		Items:   []envItem{{Name: "a", Rest: map[string]any{"origin": "u"}}},
	}
	got := Tree(v).(map[string]any)
	server := got["server"].(map[string]any)
	if server["read_header_timeout"] != "1.5s" || server["size"] != "4MiB" || server["enabled"] != true {
		t.Errorf("server = %v", server)
	}
	if _, ok := server["list"]; ok {
		t.Errorf("nil list rendered: %v", server)
	}
	item := got["items"].([]any)[0].(map[string]any)
	if item["name"] != "a" || item["origin"] != "u" {
		t.Errorf("item = %v", item)
	}
}

func TestErrorsMergePrefixesEveryPath(t *testing.T) {
	var target struct {
		Timeout time.Duration `mapstructure:"timeout"`
	}
	err := Decode(map[string]any{"timeout": 5, "extra": 1}, &target)
	var e Errors
	e.Merge("routes[1].filters[0].options", err)
	e.Add("routes[1]", "bad %s", "thing")
	want := []string{
		`routes[1].filters[0].options.timeout: duration 5 needs a unit, such as "5s" or "5ms"`,
		"routes[1].filters[0].options.extra: unknown key",
		"routes[1]: bad thing",
	}
	slices.Sort(want)
	got := slices.Clone(e.Problems)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
}

package cassandraengine_test

import (
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/cassandraengine"
)

const nsYAML = `
    time_partition: {seconds_per_time_slice: 86400, seconds_per_time_bucket: 3600, event_buckets: 4}
    accept_limit: 24h
    retention: {close_after: 24h, delete_after: 48h}
`

// A namespace selects Cassandra from config alone; options decode with their defaults.
func TestConfigSelectsCassandraPerNamespace(t *testing.T) {
	cfg, err := timeseries.ParseConfigYAML([]byte(`
engines:
  cassandra:
    hosts: ["127.0.0.1:22042"]
    timeout: 3s
    defaults: {replication: {class: NetworkTopologyStrategy, dc1: "3"}}
namespaces:
  onpebble:` + nsYAML + `
  oncassandra:` + nsYAML + `
    engine: cassandra
    engine_options: {keyspace: events_a, read_consistency: LOCAL_ONE}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespaces["oncassandra"].Engine != cassandraengine.Name || cfg.Namespaces["onpebble"].Engine != "" {
		t.Fatalf("engines: %+v", cfg.Namespaces)
	}
}

// Every problem is reported at once, each with its key path.
func TestConfigErrorsNameTheirKeyPath(t *testing.T) {
	_, err := timeseries.ParseConfigYAML([]byte(`
engines:
  cassandra:
    port: 70000
    page_size: 1
    defaults: {write_consistency: ANY}
  riak: {}
namespaces:
  a:` + nsYAML + `
    engine: cassandra
    engine_options: {read_consistency: SOMETIMES, keyspace: "bad-name"}
  b:` + nsYAML + `
    engine: mongo
  c:` + nsYAML + `
    engine_options: {keyspace: x}
`))
	if err == nil {
		t.Fatal("config with bad engine options validated")
	}
	for _, want := range []string{
		"engines.cassandra.hosts: at least one contact point is required",
		"engines.cassandra.port: must be between 1 and 65535",
		"engines.cassandra.page_size: must be between",
		"engines.cassandra.defaults.write_consistency: ANY is not allowed",
		"engines.riak: unknown engine",
		`namespaces.a.engine_options.read_consistency: "SOMETIMES" is not a consistency level`,
		`namespaces.a.engine_options.keyspace: "bad-name" must match`,
		`namespaces.b.engine: unknown engine "mongo" (compiled in: [cassandra embedded])`,
		"namespaces.c.engine_options: the embedded engine takes no options",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	_, err = timeseries.ParseConfigYAML([]byte(`
engines: {cassandra: {hosts: [h], bogus: 1}}
namespaces:
  a:` + nsYAML + `
    engine: cassandra
`))
	if err == nil || !strings.Contains(err.Error(), "engines.cassandra.") || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown option key: %v", err)
	}
}

func TestDefaultKeyspace(t *testing.T) {
	for in, want := range map[string]string{"demo": "ts_demo", "My.Events-2": "ts_my_events_2", strings.Repeat("n", 64): "ts_" + strings.Repeat("n", 45)} {
		if got := cassandraengine.DefaultKeyspace(in); got != want {
			t.Errorf("DefaultKeyspace(%q) = %q, want %q", in, got, want)
		}
	}
}

package config

import (
	"slices"
	"testing"
	"time"
)

// envYAML has one of everything an override can reach through a map or a
// list: an origin, a route, a rate-limit policy, a namespace.
const envYAML = `
origins:
  users:
    instances: [{address: "127.0.0.1:9000"}]
routes:
  - name: users
    match: {path_prefix: /users}
    origin: users
rate_limit:
  policies:
    - {name: per_ip, rate: 10, burst: 20, key: [client_ip]}
timeseries:
  data_dir: /tmp/fg-env-test
  namespaces:
    demo:
      time_partition: {seconds_per_time_slice: 3600, seconds_per_time_bucket: 60, event_buckets: 2}
      retention: {close_after: 1h, delete_after: 24h}
      accept_limit: 30m
`

// TestEnvOverridesEverySection sets one scalar key of every section through
// FLOODGATE_* and checks the decoded config: the overrides reach struct
// sections, map entries, list elements, squashed sections, pointer-typed
// enabled flags and built-in filter sections the file does not mention.
func TestEnvOverridesEverySection(t *testing.T) {
	for _, tt := range []struct {
		section string
		env     []string
		check   func(*Config) bool
	}{
		{"server", []string{"FLOODGATE_SERVER_READ_HEADER_TIMEOUT=3s", "FLOODGATE_SERVER_TRUSTED_PROXIES=10.0.0.0/8,192.168.0.0/16"},
			func(c *Config) bool {
				return c.Server.ReadHeaderTimeout == 3*time.Second && slices.Equal(c.Server.TrustedProxies, []string{"10.0.0.0/8", "192.168.0.0/16"})
			}},
		{"admin", []string{"FLOODGATE_ADMIN_TOKEN=t0k"}, func(c *Config) bool { return c.Admin.Token == "t0k" }},
		{"origins", []string{"FLOODGATE_ORIGINS_USERS_TIMEOUTS_CONNECT=250ms", "FLOODGATE_ORIGINS_USERS_RETRY_ON_STATUSES=502,503"},
			func(c *Config) bool {
				o := c.Origins["users"]
				return o.Timeouts.Connect == 250*time.Millisecond && slices.Equal(o.Retry.OnStatuses, []int{502, 503})
			}},
		{"routes", []string{"FLOODGATE_ROUTES_0_IDEMPOTENT=true", "FLOODGATE_ROUTES_0_TIMEOUTS_RESPONSE=2s"},
			func(c *Config) bool { return c.Routes[0].Idempotent && c.Routes[0].Timeouts.Response == 2*time.Second }},
		{"route endpoint", []string{"FLOODGATE_ROUTES_0_ORIGIN=other"},
			func(c *Config) bool { return c.Routes[0].Endpoint["origin"] == "other" }},
		{"loadshed", []string{"FLOODGATE_LOADSHED_INTERVAL=250ms", "FLOODGATE_LOADSHED_GLOBAL_DRY_RUN=true", "FLOODGATE_LOADSHED_CHAOS_FRACTION=0.5"},
			func(c *Config) bool {
				return c.LoadShed.Interval == 250*time.Millisecond && c.LoadShed.Global.DryRun && c.LoadShed.Chaos.Fraction == 0.5
			}},
		{"rate_limit", []string{"FLOODGATE_RATE_LIMIT_POLICIES_0_RATE=99"},
			func(c *Config) bool { return c.RateLimit.Policies[0].Rate == 99 }},
		{"timeseries", []string{"FLOODGATE_TIMESERIES_DATA_DIR=/var/fg", "FLOODGATE_TIMESERIES_READ_FANOUT=4", "FLOODGATE_TIMESERIES_NAMESPACES_DEMO_ACCEPT_LIMIT=10m"},
			func(c *Config) bool {
				return c.TimeSeries.DataDir == "/var/fg" && c.TimeSeries.Store.ReadFanout == 4 &&
					c.TimeSeries.Store.Namespaces["demo"].AcceptLimit == 10*time.Minute
			}},
		{"built-in enabled flags", []string{"FLOODGATE_ACCESS_LOG_ENABLED=false", "FLOODGATE_REQUEST_ID_OPTIONS_HEADER=X-Trace"},
			func(c *Config) bool {
				al, rid := c.Builtin("access_log"), c.Builtin("request_id")
				return !al.On() && rid.On() && rid.Options["header"] == "X-Trace"
			}},
	} {
		t.Run(tt.section, func(t *testing.T) {
			yaml := envYAML
			if tt.section == "route endpoint" {
				yaml = envYAML[:len("\norigins:\n")] + "  other:\n    instances: [{address: \"127.0.0.1:9001\"}]\n" + envYAML[len("\norigins:\n"):]
			}
			cfg, err := ParseWithEnv([]byte(yaml), "env.yaml", tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("%v did not reach the config: %+v", tt.env, cfg)
			}
		})
	}
}

// TestEnvOverrideErrorsNameTheKey: a bad value from the environment fails
// like a bad value in the file, with the key path.
func TestEnvOverrideErrorsNameTheKey(t *testing.T) {
	_, err := ParseWithEnv([]byte(envYAML), "env.yaml", []string{"FLOODGATE_ORIGINS_USERS_TIMEOUTS_CONNECT=5", "FLOODGATE_LOADSHED_INTERVAL=soon"})
	ve, ok := AsValidationError(err)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`loadshed.interval: invalid duration "soon": want a number with a unit such as 250ms, 5s or 1m`,
		`origins.users.timeouts.connect: invalid duration "5": want a number with a unit such as 250ms, 5s or 1m`,
	}
	got := slices.Clone(ve.Problems)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
}

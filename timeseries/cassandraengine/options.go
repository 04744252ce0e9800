package cassandraengine

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/go-viper/mapstructure/v2"
)

// Options are the cluster-wide settings of the engine (config key timeseries engines.cassandra).
// Zero values take the defaults of ApplyDefaults.
type Options struct {
	// Hosts are contact points, "host" or "host:port".
	Hosts []string `mapstructure:"hosts"`
	// Port is the CQL port used for hosts given without one. Default 9042.
	Port int `mapstructure:"port"`
	// LocalDC makes the driver prefer this datacenter's replicas (token-aware, DC-aware);
	// empty routes token-aware over all hosts.
	LocalDC string `mapstructure:"local_dc"`
	// Timeout bounds one request to a node. Default 5s.
	Timeout time.Duration `mapstructure:"timeout"`
	// ConnectTimeout bounds the initial connection to a node. Default 5s.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// NumConns is the number of connections per host. Default 2.
	NumConns int `mapstructure:"num_conns"`
	// PageSize is the number of rows fetched per round trip by scans (one row per event item).
	// Default 200: a read asks each partition for a few dozen events per round, so larger
	// pages mostly fetch rows nobody reads.
	PageSize int `mapstructure:"page_size"`
	// WriteConcurrency bounds the requests (postings, per-partition row batches) one Apply has
	// in flight. Default 32.
	WriteConcurrency int `mapstructure:"write_concurrency"`
	// SliceCacheTTL is how long the list of a namespace's slices is reused before it is read
	// again from the metadata table. Default 1s; slices this process creates or drops update
	// it at once.
	SliceCacheTTL time.Duration `mapstructure:"slice_cache_ttl"`
	// ControlInterval is how often the control loop creates upcoming slice tables. Default 1m.
	ControlInterval time.Duration `mapstructure:"control_interval"`
	// SlicesAhead is how many slices after the current one the control loop keeps created.
	// Default 1; -1 turns the control loop off (slices are then only created on first write).
	SlicesAhead int `mapstructure:"slices_ahead"`
	// SchemaAgreementTimeout bounds the wait for all nodes to agree on a schema change (slice
	// tables created or dropped). Default 60s.
	SchemaAgreementTimeout time.Duration `mapstructure:"schema_agreement_timeout"`
	// Defaults apply to every namespace; a namespace's engine_options override them field by
	// field.
	Defaults NamespaceOptions `mapstructure:"defaults"`
}

// NamespaceOptions are one namespace's settings (config key namespaces.NAME.engine_options).
type NamespaceOptions struct {
	// Keyspace holding the namespace's slice tables and slice metadata. Default derived from
	// the namespace name ("ts_" + name, lower-cased, non-alphanumerics as "_").
	Keyspace string `mapstructure:"keyspace"`
	// Replication is the keyspace's replication map as CQL takes it, e.g.
	// {class: NetworkTopologyStrategy, dc1: 3}. Default {class: SimpleStrategy,
	// replication_factor: 3}. Applied when the keyspace is created; an existing keyspace is
	// left as it is (change replication with ALTER KEYSPACE and a repair).
	Replication map[string]string `mapstructure:"replication"`
	// ReadConsistency and WriteConsistency are CQL consistency levels. Default LOCAL_QUORUM.
	ReadConsistency  string `mapstructure:"read_consistency"`
	WriteConsistency string `mapstructure:"write_consistency"`
}

// ApplyDefaults fills zero values.
func (o *Options) ApplyDefaults() {
	if o.Port == 0 {
		o.Port = 9042
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.NumConns == 0 {
		o.NumConns = 2
	}
	if o.PageSize == 0 {
		o.PageSize = 200
	}
	if o.WriteConcurrency == 0 {
		o.WriteConcurrency = 32
	}
	if o.SliceCacheTTL == 0 {
		o.SliceCacheTTL = time.Second
	}
	if o.ControlInterval == 0 {
		o.ControlInterval = time.Minute
	}
	if o.SlicesAhead == 0 {
		o.SlicesAhead = 1
	}
	if o.SchemaAgreementTimeout == 0 {
		o.SchemaAgreementTimeout = 60 * time.Second
	}
	if o.Defaults.Replication == nil {
		o.Defaults.Replication = map[string]string{"class": "SimpleStrategy", "replication_factor": "3"}
	}
	if o.Defaults.ReadConsistency == "" {
		o.Defaults.ReadConsistency = "LOCAL_QUORUM"
	}
	if o.Defaults.WriteConsistency == "" {
		o.Defaults.WriteConsistency = "LOCAL_QUORUM"
	}
}

// Validate reports every problem with its key path relative to the options.
func (o *Options) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(o.Hosts) == 0 {
		add("hosts: at least one contact point is required")
	}
	for i, h := range o.Hosts {
		if strings.TrimSpace(h) == "" {
			add("hosts[%d]: must not be empty", i)
		}
	}
	if o.Port < 1 || o.Port > 65535 {
		add("port: must be between 1 and 65535")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"timeout", o.Timeout}, {"connect_timeout", o.ConnectTimeout}, {"slice_cache_ttl", o.SliceCacheTTL},
		{"control_interval", o.ControlInterval}, {"schema_agreement_timeout", o.SchemaAgreementTimeout},
	} {
		if d.v <= 0 {
			add("%s: must be positive", d.name)
		}
	}
	for _, n := range []struct {
		name     string
		v, lo, h int
	}{
		{"num_conns", o.NumConns, 1, 64}, {"page_size", o.PageSize, 10, 100_000},
		{"write_concurrency", o.WriteConcurrency, 1, 1024}, {"slices_ahead", o.SlicesAhead, -1, 100},
	} {
		if n.v < n.lo || n.v > n.h {
			add("%s: must be between %d and %d", n.name, n.lo, n.h)
		}
	}
	if err := o.Defaults.validate(); err != nil {
		errs = append(errs, prefixed("defaults.", err))
	}
	return errors.Join(errs...)
}

var keyspaceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

func (n *NamespaceOptions) validate() error {
	var errs []error
	if n.Keyspace != "" && !keyspaceName.MatchString(n.Keyspace) {
		errs = append(errs, fmt.Errorf("keyspace: %q must match %s", n.Keyspace, keyspaceName))
	}
	for _, c := range []struct{ name, v string }{{"read_consistency", n.ReadConsistency}, {"write_consistency", n.WriteConsistency}} {
		if c.v == "" {
			continue
		}
		if _, err := parseConsistency(c.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", c.name, err))
		}
	}
	if n.Replication != nil {
		if n.Replication["class"] == "" {
			errs = append(errs, errors.New("replication.class: is required (SimpleStrategy or NetworkTopologyStrategy)"))
		}
		for k, v := range n.Replication {
			if strings.ContainsAny(k+v, "'\"") {
				errs = append(errs, fmt.Errorf("replication.%s: must not contain quotes", k))
			}
		}
	}
	return errors.Join(errs...)
}

// merged returns the defaults overridden by the namespace's non-zero fields.
func (n NamespaceOptions) merged(defaults NamespaceOptions, namespace string) NamespaceOptions {
	out := defaults
	if n.Keyspace != "" {
		out.Keyspace = n.Keyspace
	}
	if n.Replication != nil {
		out.Replication = n.Replication
	}
	if n.ReadConsistency != "" {
		out.ReadConsistency = n.ReadConsistency
	}
	if n.WriteConsistency != "" {
		out.WriteConsistency = n.WriteConsistency
	}
	if n.Keyspace == "" {
		out.Keyspace = DefaultKeyspace(namespace)
	}
	return out
}

var nonWord = regexp.MustCompile(`[^a-z0-9_]`)

// DefaultKeyspace derives a keyspace name from a namespace name: "ts_" + the name lower-cased
// with other characters as "_", cut to fit. CQL keyspace names are case-insensitive, so two
// namespaces that differ only in case or punctuation must set keyspace explicitly (Validate of
// the engine's namespace set reports the clash).
func DefaultKeyspace(namespace string) string {
	k := "ts_" + nonWord.ReplaceAllString(strings.ToLower(namespace), "_")
	if len(k) > 48 {
		k = k[:48]
	}
	return k
}

func parseConsistency(s string) (gocql.Consistency, error) {
	c, err := gocql.ParseConsistencyWrapper(strings.ToUpper(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a consistency level (ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE)", s)
	}
	if c == gocql.Any {
		return 0, fmt.Errorf("ANY is not allowed: a write at ANY can be acknowledged without reaching any replica")
	}
	return c, nil
}

// decodeStrict decodes a config subtree into out, rejecting unknown keys and decoding
// durations such as "5s".
func decodeStrict(in map[string]any, out any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
	})
	if err != nil {
		return err
	}
	return dec.Decode(in)
}

func prefixed(prefix string, err error) error {
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, errors.New(prefix+e.Error()))
		}
	} else {
		out = append(out, errors.New(prefix+err.Error()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Error() < out[j].Error() })
	return errors.Join(out...)
}

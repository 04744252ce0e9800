package timeseries

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	confkit "github.com/floodgate-dev/floodgate/decode"
)

// FieldType is the index type of a field: KEYWORD, INTEGER or BOOLEAN.
type FieldType string

// Index field types.
const (
	FieldKeyword FieldType = "KEYWORD"
	FieldInteger FieldType = "INTEGER"
	FieldBoolean FieldType = "BOOLEAN"
)

// Config is the store's configuration: the namespaces it serves and service-wide knobs.
type Config struct {
	// Namespaces maps a namespace name to its configuration.
	Namespaces map[string]NamespaceConfig `mapstructure:"namespaces"`
	// ReadFanout bounds how many partitions one read scans in parallel. Default 16.
	ReadFanout int `mapstructure:"read_fanout"`
	// RetentionInterval is how often slices past deleteAfter are dropped. Default 1m.
	RetentionInterval time.Duration `mapstructure:"retention_interval"`
	// Engines holds the options of the storage engines namespaces may select, by engine name
	// (e.g. "cassandra"); the embedded engine needs none. See engines.go.
	Engines map[string]map[string]any `mapstructure:"engines"`
}

// NamespaceConfig is one dataset's configuration. TimePartition must not change once data is
// written (reads locate partitions from it); everything else is safe to change.
type NamespaceConfig struct {
	TimePartition  TimePartition  `mapstructure:"time_partition"`
	QueueBuffering QueueBuffering `mapstructure:"queue_buffering"`
	// AcceptLimit rejects events whose eventTime is older than now - AcceptLimit.
	AcceptLimit time.Duration `mapstructure:"accept_limit"`
	// FutureLimit rejects events whose eventTime is later than now + FutureLimit.
	FutureLimit time.Duration `mapstructure:"future_limit"`
	Retention   Retention     `mapstructure:"retention"`
	Index       Index         `mapstructure:"index"`
	SLOs        SLOs          `mapstructure:"slos"`
	Limits      Limits        `mapstructure:"limits"`
	// Engine names the storage engine holding the namespace: "embedded" (pebble, the default
	// when empty) or one compiled in, such as "cassandra". It cannot change while served.
	Engine string `mapstructure:"engine"`
	// EngineOptions are the selected engine's per-namespace options (for cassandra: keyspace,
	// replication, read_consistency, write_consistency).
	EngineOptions map[string]any `mapstructure:"engine_options"`
}

// TimePartition lays events out: slices (unit of retention) hold time buckets, each split into
// EventBuckets partitions per series.
type TimePartition struct {
	SecondsPerTimeSlice  int64 `mapstructure:"seconds_per_time_slice"`
	SecondsPerTimeBucket int64 `mapstructure:"seconds_per_time_bucket"`
	EventBuckets         int   `mapstructure:"event_buckets"`
}

// QueueBuffering configures the asynchronous write queue.
type QueueBuffering struct {
	// Coalesce is how long the queue gathers events before writing a batch.
	Coalesce time.Duration `mapstructure:"coalesce"`
	// BufferCapacity is the most events the queue holds; beyond it writes are rejected.
	BufferCapacity int `mapstructure:"buffer_capacity"`
	// BufferBytes is the most memory (approximate, items plus overhead) the queue holds;
	// beyond it writes are rejected. Default 64MiB.
	BufferBytes confkit.ByteSize `mapstructure:"buffer_bytes"`
	// Writers is the number of writer goroutines (each with its share of the queue).
	// Default 2. Takes effect at start.
	Writers int `mapstructure:"writers"`
	// MaxBatchEvents caps one engine batch written by the queue. Default 1000.
	MaxBatchEvents int `mapstructure:"max_batch_events"`
	// FullWait is how long a write that does not fit waits for the writers to make room
	// before it is refused with 503 queue_full. 0 (the default) refuses at once. A short
	// wait paces producers at the rate the store writes instead of having them decode and
	// re-send batches that are refused again.
	FullWait time.Duration `mapstructure:"full_wait"`
}

// Retention decides when a slice stops taking writes and when it is dropped, both measured
// from the slice's end. CloseAfter is enforced through AcceptLimit (Validate requires
// AcceptLimit <= CloseAfter), so no write can reach a closed slice.
type Retention struct {
	CloseAfter  time.Duration `mapstructure:"close_after"`
	DeleteAfter time.Duration `mapstructure:"delete_after"`
}

// Index lists the fields written to the search index and their types.
type Index struct {
	FieldMapping map[string]FieldType `mapstructure:"field_mapping"`
}

// SLOs are latency objectives. Max is enforced: a read that reaches it returns what it has,
// flagged partial; a sync write that reaches it answers 504 (the write may still land; retry
// is safe because writes are idempotent). Target is advisory, for dashboards.
type SLOs struct {
	Read  SLO `mapstructure:"read"`
	Write SLO `mapstructure:"write"`
}

// SLO is one latency objective.
type SLO struct {
	Target time.Duration `mapstructure:"target"`
	Max    time.Duration `mapstructure:"max"`
}

// Limits bound request sizes.
type Limits struct {
	MaxBatchEvents int `mapstructure:"max_batch_events"`
	MaxEventItems  int `mapstructure:"max_event_items"`
	// MaxItemBytes bounds one item's key plus value, in bytes (decoded).
	MaxItemBytes int `mapstructure:"max_item_bytes"`
	MaxPageSize  int `mapstructure:"max_page_size"`
	// MaxDistinctValues bounds the distinct values one aggregation may track.
	MaxDistinctValues int `mapstructure:"max_distinct_values"`
}

// DemoNamespace is a modest configuration that serves namespace "demo" out of the box.
func DemoNamespace() (string, NamespaceConfig) {
	return "demo", NamespaceConfig{
		TimePartition: TimePartition{
			SecondsPerTimeSlice:  24 * 3600,
			SecondsPerTimeBucket: 3600,
			EventBuckets:         4,
		},
		QueueBuffering: QueueBuffering{Coalesce: 10 * time.Millisecond, BufferCapacity: 100_000, BufferBytes: 256 << 20, Writers: 2, MaxBatchEvents: 1000, FullWait: 100 * time.Millisecond},
		AcceptLimit:    7 * 24 * time.Hour,
		FutureLimit:    5 * time.Minute,
		Retention:      Retention{CloseAfter: 7 * 24 * time.Hour, DeleteAfter: 30 * 24 * time.Hour},
		Index: Index{FieldMapping: map[string]FieldType{
			"deviceType": FieldKeyword,
			"country":    FieldKeyword,
			"status":     FieldInteger,
			"durationMs": FieldInteger,
			"success":    FieldBoolean,
		}},
		SLOs: SLOs{
			Read:  SLO{Target: 20 * time.Millisecond, Max: 500 * time.Millisecond},
			Write: SLO{Target: 5 * time.Millisecond, Max: 2 * time.Second},
		},
		Limits: Limits{MaxBatchEvents: 1000, MaxEventItems: 64, MaxItemBytes: 64 << 10, MaxPageSize: 1000, MaxDistinctValues: 100_000},
	}
}

// DemoConfig is a Config serving only DemoNamespace.
func DemoConfig() Config {
	name, ns := DemoNamespace()
	c := Config{Namespaces: map[string]NamespaceConfig{name: ns}}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills zero values that have a sensible default; it leaves required fields
// (time partition, retention, accept limit) for Validate to report.
func (c *Config) ApplyDefaults() {
	if c.ReadFanout == 0 {
		c.ReadFanout = 16
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Minute
	}
	for name, ns := range c.Namespaces {
		ns.ApplyDefaults()
		c.Namespaces[name] = ns
	}
}

// ApplyDefaults fills optional zero values.
func (n *NamespaceConfig) ApplyDefaults() {
	if n.QueueBuffering.MaxBatchEvents == 0 {
		n.QueueBuffering.MaxBatchEvents = 1000
	}
	if n.QueueBuffering.BufferCapacity == 0 {
		n.QueueBuffering.BufferCapacity = 10_000
	}
	if n.QueueBuffering.BufferBytes == 0 {
		n.QueueBuffering.BufferBytes = 64 << 20
	}
	if n.QueueBuffering.Writers == 0 {
		n.QueueBuffering.Writers = 2
	}
	if n.QueueBuffering.Coalesce == 0 {
		n.QueueBuffering.Coalesce = 10 * time.Millisecond
	}
	if n.FutureLimit == 0 {
		n.FutureLimit = 5 * time.Minute
	}
	if n.SLOs.Read.Max == 0 {
		n.SLOs.Read.Max = time.Second
	}
	if n.SLOs.Write.Max == 0 {
		n.SLOs.Write.Max = 5 * time.Second
	}
	l := &n.Limits
	if l.MaxBatchEvents == 0 {
		l.MaxBatchEvents = 1000
	}
	if l.MaxEventItems == 0 {
		l.MaxEventItems = 64
	}
	if l.MaxItemBytes == 0 {
		l.MaxItemBytes = 64 << 10
	}
	if l.MaxPageSize == 0 {
		l.MaxPageSize = 1000
	}
	if l.MaxDistinctValues == 0 {
		l.MaxDistinctValues = 100_000
	}
}

var namespaceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate reports every problem, each naming its field path relative to Config.
func (c *Config) Validate() error {
	var errs []error
	if c.ReadFanout < 1 || c.ReadFanout > 1024 {
		errs = append(errs, errors.New("read_fanout: must be between 1 and 1024"))
	}
	if c.RetentionInterval <= 0 {
		errs = append(errs, errors.New("retention_interval: must be positive"))
	}
	names := make([]string, 0, len(c.Namespaces))
	for name := range c.Namespaces {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !namespaceName.MatchString(name) {
			errs = append(errs, fmt.Errorf("namespaces.%s: name must match %s", name, namespaceName))
			continue
		}
		ns := c.Namespaces[name]
		if err := ns.Validate(); err != nil {
			errs = append(errs, prefixErrors("namespaces."+name+".", err))
		}
	}
	errs = append(errs, c.validateEngines()...)
	return errors.Join(errs...)
}

// Validate reports every problem, each naming its field path relative to NamespaceConfig.
func (n *NamespaceConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	tp := n.TimePartition
	switch {
	case tp.SecondsPerTimeBucket <= 0:
		add("time_partition.seconds_per_time_bucket: must be positive")
	case tp.SecondsPerTimeSlice <= 0:
		add("time_partition.seconds_per_time_slice: must be positive")
	case tp.SecondsPerTimeSlice%tp.SecondsPerTimeBucket != 0:
		add("time_partition.seconds_per_time_slice: must be a multiple of seconds_per_time_bucket (%d)", tp.SecondsPerTimeBucket)
	case tp.SecondsPerTimeSlice/tp.SecondsPerTimeBucket > 10_000:
		add("time_partition.seconds_per_time_slice: at most 10000 time buckets per slice")
	}
	if tp.EventBuckets < 1 || tp.EventBuckets > 1024 {
		add("time_partition.event_buckets: must be between 1 and 1024")
	}
	q := n.QueueBuffering
	if q.Coalesce <= 0 || q.Coalesce > time.Minute {
		add("queue_buffering.coalesce: must be in (0, 1m]")
	}
	if q.BufferCapacity < 1 {
		add("queue_buffering.buffer_capacity: must be at least 1")
	}
	if q.BufferBytes < 1<<10 {
		add("queue_buffering.buffer_bytes: must be at least 1KiB")
	}
	if q.Writers < 1 || q.Writers > 64 {
		add("queue_buffering.writers: must be between 1 and 64")
	}
	if q.MaxBatchEvents < 1 {
		add("queue_buffering.max_batch_events: must be at least 1")
	}
	if q.FullWait < 0 || q.FullWait > 10*time.Second {
		add("queue_buffering.full_wait: must be in [0, 10s]")
	}
	if n.AcceptLimit <= 0 {
		add("accept_limit: must be positive")
	}
	if n.FutureLimit < 0 {
		add("future_limit: must not be negative")
	}
	r := n.Retention
	if r.CloseAfter < n.AcceptLimit {
		add("retention.close_after: must be at least accept_limit (%s), or accepted events would target closed slices", n.AcceptLimit)
	}
	if r.DeleteAfter <= r.CloseAfter {
		add("retention.delete_after: must be greater than close_after (%s)", r.CloseAfter)
	}
	fields := make([]string, 0, len(n.Index.FieldMapping))
	for f := range n.Index.FieldMapping {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		switch n.Index.FieldMapping[f] {
		case FieldKeyword, FieldInteger, FieldBoolean:
		default:
			add("index.field_mapping.%s: type %q must be KEYWORD, INTEGER or BOOLEAN", f, n.Index.FieldMapping[f])
		}
		if f == "" {
			add("index.field_mapping: field name must not be empty")
		}
	}
	for name, s := range map[string]SLO{"read": n.SLOs.Read, "write": n.SLOs.Write} {
		if s.Max <= 0 {
			add("slos.%s.max: must be positive", name)
		}
		if s.Target < 0 || s.Target > s.Max {
			add("slos.%s.target: must be between 0 and max (%s)", name, s.Max)
		}
	}
	l := n.Limits
	for _, v := range []struct {
		name string
		val  int
	}{
		{"max_batch_events", l.MaxBatchEvents}, {"max_event_items", l.MaxEventItems},
		{"max_item_bytes", l.MaxItemBytes}, {"max_page_size", l.MaxPageSize},
		{"max_distinct_values", l.MaxDistinctValues},
	} {
		if v.val < 1 {
			add("limits.%s: must be at least 1", v.name)
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

func prefixErrors(prefix string, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			list = append(list, errors.New(prefix+e.Error()))
		}
		return errors.Join(list...)
	}
	return errors.New(prefix + err.Error())
}

// Package cassandraengine is the distributed TimeSeries engine: it implements storage.Engine
// on Apache Cassandra (5.0) through the Apache Cassandra Go driver.
//
// Layout, per namespace keyspace:
//   - events_<slice>: one table per time slice, partition key (time_series_id, time_bucket,
//     event_bucket), clustering (event_time DESC, event_id ASC, item_key ASC); one row per
//     event item, or a marker row (empty item key) for an event without items.
//   - postings_<slice>: the search index of the same slice, partition key (field, kind,
//     time_bucket, value), clustering (event_time DESC, time_series_id, event_id) — the ref
//     order storage.CompareRefs defines, so index scans stream newest first.
//   - slices: the metadata table, one row per slice of the namespace with its start, end,
//     status and the partitioning it was created with.
//
// Slice tables are created ahead of need by a control loop (and on demand for a write that
// reaches a slice not created yet) and dropped whole by retention: no row carries a TTL and
// no row is deleted, so retention makes no tombstones.
//
// Writes carry client-side write timestamps; an event's postings are written before its rows
// (see Apply), so no logged batch is needed for search to find every visible event. Retries,
// hedges and duplicates of an event write the same cells, so they converge; a rewrite with
// different values keeps the later client timestamp.
package cassandraengine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Namespace is what the engine needs to know about one namespace it serves.
type Namespace struct {
	Options NamespaceOptions
	// SliceMs, BucketMs and EventBuckets are the namespace's partitioning, recorded in the
	// slice metadata and used by the control loop to create upcoming slices.
	SliceMs      int64
	BucketMs     int64
	EventBuckets int
}

// Engine is the Cassandra-backed storage.Engine.
type Engine struct {
	opts    Options
	session *gocql.Session
	ddl     *gocql.Session // schema changes only (see Open)
	clock   writeClock
	logf    func(string, ...any)
	now     func() time.Time

	mu         sync.RWMutex
	namespaces map[string]*nsState

	closed    atomic.Bool
	stopLoop  chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
}

var _ storage.Engine = (*Engine)(nil)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("cassandraengine: engine is closed")

// ErrUnknownNamespace is returned for a namespace the engine was not configured with.
var ErrUnknownNamespace = errors.New("cassandraengine: namespace not configured on this engine")

// Open connects to the cluster, makes sure every namespace's keyspace, metadata table and
// current slices exist, and starts the control loop. logf receives background errors.
func Open(ctx context.Context, o Options, namespaces map[string]Namespace, logf func(string, ...any)) (*Engine, error) {
	o.ApplyDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	session, err := newCluster(o, o.Timeout, o.NumConns).CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandraengine: connect to %v: %w", o.Hosts, err)
	}
	// Schema changes (slice tables created and dropped) get their own small session: a DROP
	// TABLE flushes the keyspace's memtables and can take seconds, far beyond a data
	// request's timeout.
	ddl, err := newCluster(o, o.SchemaAgreementTimeout, 1).CreateSession()
	if err != nil {
		session.Close()
		return nil, fmt.Errorf("cassandraengine: connect to %v: %w", o.Hosts, err)
	}
	e := &Engine{
		opts: o, session: session, ddl: ddl, logf: logf, now: time.Now,
		namespaces: map[string]*nsState{},
		stopLoop:   make(chan struct{}), loopDone: make(chan struct{}),
	}
	if err := e.Configure(ctx, namespaces); err != nil {
		session.Close()
		ddl.Close()
		return nil, err
	}
	go e.controlLoop()
	return e, nil
}

func newCluster(o Options, timeout time.Duration, conns int) *gocql.ClusterConfig {
	cluster := gocql.NewCluster(o.Hosts...)
	cluster.Port = o.Port
	cluster.Timeout = timeout
	cluster.WriteTimeout = timeout
	cluster.ConnectTimeout = o.ConnectTimeout
	cluster.NumConns = conns
	cluster.PageSize = o.PageSize
	cluster.MaxWaitSchemaAgreement = o.SchemaAgreementTimeout
	cluster.DefaultIdempotence = true // every statement we send is idempotent (see package doc)
	cluster.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 2}
	cluster.ReconnectInterval = time.Second
	cluster.Logger = gocql.NewLogger(gocql.LogLevelNone)
	fallback := gocql.RoundRobinHostPolicy()
	if o.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(o.LocalDC)
	}
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	return cluster
}

// Configure sets the namespaces the engine serves: new ones get their keyspace and metadata
// table created; existing ones take new consistency levels. A namespace's keyspace and
// partitioning cannot change while it is served.
func (e *Engine) Configure(ctx context.Context, namespaces map[string]Namespace) error {
	if e.closed.Load() {
		return ErrClosed
	}
	next := make(map[string]*nsState, len(namespaces))
	var errs []error
	byKeyspace := map[string]string{}
	for name, n := range namespaces {
		opts := n.Options.merged(e.opts.Defaults, name)
		if err := opts.validate(); err != nil {
			errs = append(errs, prefixed(name+".", err))
			continue
		}
		if other, dup := byKeyspace[strings.ToLower(opts.Keyspace)]; dup {
			errs = append(errs, fmt.Errorf("%s.keyspace: %q is also used by namespace %q; set a distinct keyspace", name, opts.Keyspace, other))
			continue
		}
		byKeyspace[strings.ToLower(opts.Keyspace)] = name
		readCL, _ := parseConsistency(opts.ReadConsistency)
		writeCL, _ := parseConsistency(opts.WriteConsistency)
		e.mu.RLock()
		old := e.namespaces[name]
		e.mu.RUnlock()
		if old != nil {
			if !strings.EqualFold(old.keyspace, opts.Keyspace) || old.cfg.SliceMs != n.SliceMs || old.cfg.BucketMs != n.BucketMs || old.cfg.EventBuckets != n.EventBuckets {
				errs = append(errs, fmt.Errorf("%s: keyspace and partitioning cannot change while the namespace is served", name))
				continue
			}
			old.setConsistency(readCL, writeCL)
			next[name] = old
			continue
		}
		st := newNSState(name, n, opts.Keyspace, readCL, writeCL)
		if err := e.createKeyspace(ctx, st, opts.Replication); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		next[name] = st
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	e.mu.Lock()
	e.namespaces = next
	e.mu.Unlock()
	e.ensureUpcoming(ctx)
	return nil
}

// Close stops the control loop and closes the session. Every write it acknowledged was
// already acknowledged by the cluster at the namespace's write consistency.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		close(e.stopLoop)
		<-e.loopDone
		e.session.Close()
		e.ddl.Close()
	})
	return nil
}

func (e *Engine) namespace(ns string) (*nsState, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	e.mu.RLock()
	st := e.namespaces[ns]
	e.mu.RUnlock()
	if st == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNamespace, ns)
	}
	return st, nil
}

// Apply writes b in two phases, at most WriteConcurrency requests at a time: first every index
// posting, then the event rows, each as unlogged batches of one partition's rows (routed
// token-aware to a replica, applied atomically by each replica). Postings first is what keeps search complete without a logged batch: an event
// becomes visible only after all its postings are stored, and a posting whose event is not
// there (a write that failed half-way, or an old value) is filtered out because search
// re-checks every hit against the stored event. Slices without tables are created first.
//
// The engine returns once every statement is acknowledged at the write consistency; Durable
// and Buffered are the same here (the cluster, not a local fsync, makes a write durable). On
// error some events may have been written: retrying the whole batch is safe and converges.
func (e *Engine) Apply(ctx context.Context, b *storage.Batch, _ storage.Durability) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := e.namespace(b.Namespace)
	if err != nil {
		return err
	}
	if len(b.Writes) == 0 {
		return nil
	}
	seen := map[int64]bool{}
	for i := range b.Writes {
		s := b.Writes[i].Partition.Slice
		if !seen[s] {
			seen[s] = true
			if err := e.ensureSlice(ctx, st, s); err != nil {
				return err
			}
		}
	}
	cl := st.writeConsistency()
	// Timestamps increase in batch order so that, as in the embedded engine, the later of two
	// writes of the same cell inside one batch wins.
	stamps := make([]int64, len(b.Writes))
	for i := range stamps {
		stamps[i] = e.clock.next()
	}

	// Postings grouped by their partition, one unlogged batch per group: a batch of events
	// from one time bucket shares a few posting partitions per field value.
	type postingRow struct {
		kind     int8
		value    []byte
		intValue *int64
		w        *storage.Write
		ts       int64
	}
	type postingPart struct {
		slice, bucket int64
		field         string
		kind          int8
		value         string
	}
	byPart := map[postingPart][]postingRow{}
	var partOrder []postingPart
	for i := range b.Writes {
		w := &b.Writes[i]
		for _, ix := range w.Index {
			kind, value, intValue := postingKey(ix)
			k := postingPart{w.Partition.Slice, w.Partition.Bucket, ix.Field, kind, string(value)}
			if _, ok := byPart[k]; !ok {
				partOrder = append(partOrder, k)
			}
			byPart[k] = append(byPart[k], postingRow{kind, value, intValue, w, stamps[i]})
		}
	}
	var postings []func(context.Context) error
	for _, k := range partOrder {
		list := byPart[k]
		insert := st.stmt(k.slice, stmtInsertPosting)
		for len(list) > 0 {
			chunk := list[:min(len(list), maxBatchRows)]
			list = list[len(chunk):]
			postings = append(postings, func(ctx context.Context) error {
				batch := e.session.Batch(gocql.UnloggedBatch).Consistency(cl)
				for _, r := range chunk {
					batch.Query(insert, k.field, r.kind, k.bucket, r.value, r.w.Event.Time, r.w.Event.TimeSeriesID, r.w.Event.ID, r.intValue, r.ts)
				}
				return batch.ExecContext(ctx)
			})
		}
	}
	if err := e.run(ctx, postings); err != nil {
		return fmt.Errorf("cassandraengine: write index postings: %w", err)
	}

	groups := map[storage.Partition][]int{}
	var order []storage.Partition
	for i := range b.Writes {
		p := b.Writes[i].Partition
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], i)
	}
	rows := make([]func(context.Context) error, 0, len(order))
	for _, p := range order {
		insert := st.stmt(p.Slice, stmtInsertRow)
		for _, idx := range chunkByRows(groups[p], b.Writes) {
			rows = append(rows, e.rowBatch(insert, p, idx, b.Writes, stamps, cl))
		}
	}
	if err := e.run(ctx, rows); err != nil {
		return fmt.Errorf("cassandraengine: write events: %w", err)
	}
	return nil
}

// maxBatchRows bounds the rows of one partition batch, well under Cassandra's batch size
// thresholds (batch_size_warn_threshold 5 KiB is per batch, so large batches only warn).
const maxBatchRows = 64

// chunkByRows splits the writes of one partition into groups of at most maxBatchRows rows
// (an event is never split).
func chunkByRows(idx []int, writes []storage.Write) [][]int {
	var out [][]int
	start, rows := 0, 0
	for k, i := range idx {
		n := max(1, len(writes[i].Event.Items))
		if rows > 0 && rows+n > maxBatchRows {
			out = append(out, idx[start:k])
			start, rows = k, 0
		}
		rows += n
	}
	return append(out, idx[start:])
}

// rowBatch writes the rows of some events of one partition as one unlogged batch.
func (e *Engine) rowBatch(insert string, p storage.Partition, idx []int, writes []storage.Write, stamps []int64, cl gocql.Consistency) func(context.Context) error {
	return func(ctx context.Context) error {
		batch := e.session.Batch(gocql.UnloggedBatch).Consistency(cl)
		for _, i := range idx {
			ev, ts := &writes[i].Event, stamps[i]
			if len(ev.Items) == 0 { // a marker row, so an event without items exists
				batch.Query(insert, p.TimeSeriesID, p.Bucket, int16(p.EventBucket), ev.Time, ev.ID, []byte{}, nil, ts)
			}
			for _, it := range ev.Items {
				batch.Query(insert, p.TimeSeriesID, p.Bucket, int16(p.EventBucket), ev.Time, ev.ID, it.Key, it.Value, ts)
			}
		}
		return batch.ExecContext(ctx)
	}
}

// run executes ops with at most WriteConcurrency in flight and returns the first errors.
func (e *Engine) run(ctx context.Context, ops []func(context.Context) error) error {
	if len(ops) == 0 {
		return nil
	}
	work := make(chan func(context.Context) error)
	errc := make(chan error, len(ops)+1)
	var wg sync.WaitGroup
	for w := 0; w < min(e.opts.WriteConcurrency, len(ops)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for op := range work {
				if err := op(ctx); err != nil {
					errc <- err
				}
			}
		}()
	}
feed:
	for _, op := range ops {
		select {
		case work <- op:
		case <-ctx.Done():
			errc <- ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		if len(errs) < 3 {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Index kinds as stored in the postings table's partition key; booleans are keywords.
const (
	postingKeyword int8 = 1
	postingInteger int8 = 2
)

// integerPostingValue is the value component of an integer posting's partition key: integer
// postings of a field and bucket share one partition and are filtered by int_value.
var integerPostingValue = []byte{0}

func postingKey(ix storage.IndexEntry) (kind int8, value []byte, intValue *int64) {
	if ix.Kind == storage.KindInteger {
		v := ix.Int
		return postingInteger, integerPostingValue, &v
	}
	return postingKeyword, ix.Value, nil
}

// ScanPartition implements storage.Engine. A resumed scan asks for event_time <= the cursor's
// time and skips, client-side, the few rows of that millisecond at or before the cursor: CQL
// cannot express "time < T or (time = T and id > I)" in one slice with time descending.
func (e *Engine) ScanPartition(ctx context.Context, ns string, p storage.Partition, r storage.TimeRange, after *storage.Cursor, fn func(storage.Event) bool) error {
	st, err := e.namespace(ns)
	if err != nil {
		return err
	}
	if after != nil {
		r.End = min(r.End, after.Time+1)
	}
	if r.End <= r.Start {
		return nil
	}
	q := e.session.Query(st.stmt(p.Slice, stmtScanPartition), p.TimeSeriesID, p.Bucket, int16(p.EventBucket), r.Start, r.End).
		Consistency(st.readConsistency()).PageSize(e.opts.PageSize)
	iter := q.IterContext(ctx)
	var (
		cur              storage.Event
		have, stopped    bool
		t                int64
		id               string
		itemKey, itemVal []byte
	)
	for iter.Scan(&t, &id, &itemKey, &itemVal) {
		if after != nil && !after.After(t, id) {
			continue
		}
		if !have || cur.Time != t || cur.ID != id {
			if have && !fn(cur) {
				stopped = true
				break
			}
			cur = storage.Event{TimeSeriesID: p.TimeSeriesID, Time: t, ID: id, Items: make([]storage.Item, 0, 4)}
			have = true
		}
		if len(itemKey) > 0 {
			cur.Items = append(cur.Items, storage.Item{Key: itemKey, Value: nonNil(itemVal)})
		}
		itemKey, itemVal = nil, nil // Scan reuses nothing, but make fresh slices explicit
	}
	if err := readError(ctx, iter.Close()); err != nil {
		return err
	}
	if have && !stopped {
		fn(cur)
	}
	return nil
}

// GetEvent implements storage.Engine.
func (e *Engine) GetEvent(ctx context.Context, ns string, p storage.Partition, t int64, id string) (storage.Event, bool, error) {
	st, err := e.namespace(ns)
	if err != nil {
		return storage.Event{}, false, err
	}
	iter := e.session.Query(st.stmt(p.Slice, stmtGetEvent), p.TimeSeriesID, p.Bucket, int16(p.EventBucket), t, id).
		Consistency(st.readConsistency()).IterContext(ctx)
	ev := storage.Event{TimeSeriesID: p.TimeSeriesID, Time: t, ID: id}
	found := false
	var k, v []byte
	for iter.Scan(&k, &v) {
		found = true
		if len(k) > 0 {
			ev.Items = append(ev.Items, storage.Item{Key: k, Value: nonNil(v)})
		}
		k, v = nil, nil
	}
	if err := readError(ctx, iter.Close()); err != nil {
		return storage.Event{}, false, err
	}
	return ev, found, nil
}

// ScanIndex implements storage.Engine. Keyword (and boolean) postings of one value are one
// partition; integer postings of a field and bucket are one partition filtered by value, as
// in the embedded engine.
func (e *Engine) ScanIndex(ctx context.Context, ns string, ip storage.IndexPartition, m storage.IndexMatch, r storage.TimeRange, after *storage.Ref, fn func(storage.Ref) bool) error {
	st, err := e.namespace(ns)
	if err != nil {
		return err
	}
	if after != nil {
		r.End = min(r.End, after.Time+1)
	}
	if r.End <= r.Start {
		return nil
	}
	kind, value := postingKeyword, m.Equals
	integer := ip.Kind == storage.KindInteger
	if integer {
		kind, value = postingInteger, integerPostingValue
	}
	if value == nil {
		value = []byte{}
	}
	iter := e.session.Query(st.stmt(ip.Slice, stmtScanIndex), ip.Field, kind, ip.Bucket, value, r.Start, r.End).
		Consistency(st.readConsistency()).PageSize(e.opts.PageSize).IterContext(ctx)
	var (
		ref      storage.Ref
		intValue *int64
	)
	for iter.Scan(&ref.Time, &ref.TimeSeriesID, &ref.ID, &intValue) {
		if after != nil && storage.CompareRefs(ref, *after) <= 0 {
			continue
		}
		if integer && (intValue == nil || *intValue < m.Min || *intValue > m.Max) {
			continue
		}
		if !fn(ref) {
			break
		}
	}
	return readError(ctx, iter.Close())
}

// Slices implements storage.Engine: the ACTIVE slices of ns with the bounds and partitioning
// their metadata rows record.
func (e *Engine) Slices(ctx context.Context, ns string) ([]storage.SliceMeta, error) {
	st, err := e.namespace(ns)
	if err != nil {
		return nil, err
	}
	iter := e.session.Query("SELECT slice_start, slice_end, seconds_per_time_bucket, event_buckets, status FROM "+st.keyspace+".slices WHERE namespace = ?", st.name).
		Consistency(st.readConsistency()).IterContext(ctx)
	var (
		out                []storage.SliceMeta
		start, end, bucket int64
		eventBuckets       int
		status             string
	)
	for iter.Scan(&start, &end, &bucket, &eventBuckets, &status) {
		if status == statusActive {
			out = append(out, storage.SliceMeta{Start: start, End: end, BucketMs: bucket * 1000, EventBuckets: eventBuckets, Status: storage.SliceOpen})
		}
	}
	if err := iter.Close(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("cassandraengine: list slices: %w", err)
	}
	slices.SortFunc(out, func(a, b storage.SliceMeta) int { return cmp.Compare(a.Start, b.Start) })
	return out, nil
}

// PutSlice implements storage.Engine: an open slice gets its tables and an ACTIVE metadata
// row (the engine's own slice creation). Limitation: the row records this engine's configured
// partitioning, so a slice the service clamped between neighbours after a time_partition
// change is recorded with the configured width; a closed status is not stored (the service
// fences closed slices itself).
func (e *Engine) PutSlice(ctx context.Context, ns string, m storage.SliceMeta) error {
	st, err := e.namespace(ns)
	if err != nil {
		return err
	}
	if m.Status == storage.SliceClosed {
		return nil
	}
	return e.ensureSlice(ctx, st, m.Start)
}

// ScanIndexRows implements storage.Engine: this engine keeps no per-event index rows yet, so
// aggregations over it load events instead.
func (e *Engine) ScanIndexRows(context.Context, string, int64, int64, storage.TimeRange, func(storage.Ref, []storage.IndexEntry) bool) error {
	return storage.ErrNotSupported
}

// readError maps a missing slice table (dropped by retention while a read was planned) to
// "no rows", and a driver error after the caller's deadline to the context's error.
func readError(ctx context.Context, err error) error {
	if err == nil || isMissingTable(err) {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("cassandraengine: %w", err)
}

func isMissingTable(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) && re.Code() == gocql.ErrCodeInvalid {
		return strings.Contains(re.Message(), "unconfigured table") || strings.Contains(re.Message(), "does not exist")
	}
	return false
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// writeClock issues client-side write timestamps in microseconds, strictly increasing within
// the process, so that a later write always supersedes an earlier one of the same cell.
type writeClock struct{ last atomic.Int64 }

func (c *writeClock) next() int64 {
	for {
		now := time.Now().UnixMicro()
		last := c.last.Load()
		if now <= last {
			now = last + 1
		}
		if c.last.CompareAndSwap(last, now) {
			return now
		}
	}
}

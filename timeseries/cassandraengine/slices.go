package cassandraengine

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Slice statuses in the metadata table. A slice row is written CREATING before its tables
// are created and ACTIVE after; retention marks it DROPPING before the tables go and DROPPED
// after, and the row stays, so the record of slices has no gaps.
const (
	statusCreating = "CREATING"
	statusActive   = "ACTIVE"
	statusDropping = "DROPPING"
	statusDropped  = "DROPPED"
)

// nsState is the engine's view of one namespace: its keyspace, consistency levels, the slices
// known to have tables, and prepared statement texts per slice.
type nsState struct {
	name     string
	cfg      Namespace
	keyspace string

	mu       sync.Mutex
	readCL   gocql.Consistency
	writeCL  gocql.Consistency
	ready    map[int64]bool              // slices whose tables exist (seen ACTIVE or created here)
	creating map[int64]*sliceCreation    // in-flight creations, so concurrent writers share one
	stmts    map[int64]*[numStmts]string // CQL texts per slice
}

type sliceCreation struct {
	done chan struct{}
	err  error
}

func newNSState(name string, n Namespace, keyspace string, readCL, writeCL gocql.Consistency) *nsState {
	return &nsState{
		name: name, cfg: n, keyspace: keyspace, readCL: readCL, writeCL: writeCL,
		ready: map[int64]bool{}, creating: map[int64]*sliceCreation{}, stmts: map[int64]*[numStmts]string{},
	}
}

func (st *nsState) setConsistency(r, w gocql.Consistency) {
	st.mu.Lock()
	st.readCL, st.writeCL = r, w
	st.mu.Unlock()
}

func (st *nsState) readConsistency() gocql.Consistency {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.readCL
}

func (st *nsState) writeConsistency() gocql.Consistency {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.writeCL
}

const (
	stmtInsertRow = iota
	stmtInsertPosting
	stmtScanPartition
	stmtGetEvent
	stmtScanIndex
	numStmts
)

func eventsTable(slice int64) string   { return fmt.Sprintf("events_%d", slice/1000) }
func postingsTable(slice int64) string { return fmt.Sprintf("postings_%d", slice/1000) }

// stmt returns the CQL text of one statement on the tables of one slice.
func (st *nsState) stmt(slice int64, which int) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.stmts[slice]
	if s == nil {
		ev := st.keyspace + "." + eventsTable(slice)
		po := st.keyspace + "." + postingsTable(slice)
		s = &[numStmts]string{
			stmtInsertRow:     "INSERT INTO " + ev + " (time_series_id, time_bucket, event_bucket, event_time, event_id, item_key, item_value) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
			stmtInsertPosting: "INSERT INTO " + po + " (field, kind, time_bucket, value, event_time, time_series_id, event_id, int_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
			stmtScanPartition: "SELECT event_time, event_id, item_key, item_value FROM " + ev +
				" WHERE time_series_id = ? AND time_bucket = ? AND event_bucket = ? AND event_time >= ? AND event_time < ?",
			stmtGetEvent: "SELECT item_key, item_value FROM " + ev +
				" WHERE time_series_id = ? AND time_bucket = ? AND event_bucket = ? AND event_time = ? AND event_id = ?",
			stmtScanIndex: "SELECT event_time, time_series_id, event_id, int_value FROM " + po +
				" WHERE field = ? AND kind = ? AND time_bucket = ? AND value = ? AND event_time >= ? AND event_time < ?",
		}
		st.stmts[slice] = s
	}
	return s[which]
}

func replicationCQL(r map[string]string) string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("'%s': '%s'", k, r[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// createKeyspace creates the namespace's keyspace and slice metadata table if missing.
func (e *Engine) createKeyspace(ctx context.Context, st *nsState, replication map[string]string) error {
	stmts := []string{
		"CREATE KEYSPACE IF NOT EXISTS " + st.keyspace + " WITH replication = " + replicationCQL(replication),
		"CREATE TABLE IF NOT EXISTS " + st.keyspace + `.slices (
			namespace text, slice_start bigint, slice_end bigint, status text,
			seconds_per_time_slice bigint, seconds_per_time_bucket bigint, event_buckets int,
			events_table text, postings_table text, updated_at timestamp,
			PRIMARY KEY ((namespace), slice_start)
		) WITH CLUSTERING ORDER BY (slice_start ASC)` + tableID(st.keyspace, "slices"),
	}
	return e.schemaChange(ctx, stmts)
}

// tableID gives every table a deterministic id, derived from its keyspace and name. Two
// processes that create the same slice table at the same moment then create the very same
// table instead of two tables with different ids under one name (a schema conflict
// Cassandra cannot resolve by itself before 5.1).
func tableID(keyspace, table string) string {
	h := sha1.Sum([]byte("floodgate-timeseries/" + strings.ToLower(keyspace) + "." + table))
	h[6] = (h[6] & 0x0f) | 0x50 // version 5 (name-based, SHA-1)
	h[8] = (h[8] & 0x3f) | 0x80 // RFC 4122 variant
	u, _ := gocql.UUIDFromBytes(h[:16])
	return " AND ID = " + u.String()
}

func (e *Engine) schemaChange(ctx context.Context, stmts []string) error {
	for _, s := range stmts {
		if err := e.ddl.Query(s).ExecContext(ctx); err != nil {
			return fmt.Errorf("cassandraengine: schema change %q: %w", firstLine(s), err)
		}
	}
	if err := e.ddl.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("cassandraengine: schema agreement: %w", err)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '('); i > 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// ensureSlice makes sure the tables of one slice exist before a write reaches it. The fast
// path is a map lookup; the first writer of an unknown slice reads its metadata row and, if
// it is not ACTIVE, creates it; concurrent writers wait for that one creation.
func (e *Engine) ensureSlice(ctx context.Context, st *nsState, slice int64) error {
	st.mu.Lock()
	if st.ready[slice] {
		st.mu.Unlock()
		return nil
	}
	c := st.creating[slice]
	leader := c == nil
	if leader {
		c = &sliceCreation{done: make(chan struct{})}
		st.creating[slice] = c
	}
	st.mu.Unlock()
	if !leader {
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The creation outlives a cancelled writer: another writer may be waiting for it.
	cctx, cancel := context.WithTimeout(context.Background(), e.opts.SchemaAgreementTimeout+e.opts.Timeout*4)
	defer cancel()
	c.err = e.createSlice(cctx, st, slice)
	st.mu.Lock()
	delete(st.creating, slice)
	if c.err == nil {
		st.ready[slice] = true
	}
	st.mu.Unlock()
	close(c.done)
	return c.err
}

// errSliceDropped refuses a write to a slice retention already dropped.
var errSliceDropped = errors.New("cassandraengine: slice was dropped by retention")

func (e *Engine) createSlice(ctx context.Context, st *nsState, slice int64) error {
	var status string
	err := e.session.Query("SELECT status FROM "+st.keyspace+".slices WHERE namespace = ? AND slice_start = ?", st.name, slice).
		Consistency(gocql.LocalQuorum).ScanContext(ctx, &status)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
	case err != nil:
		return fmt.Errorf("cassandraengine: read slice metadata: %w", err)
	case status == statusActive:
		return nil
	case status == statusDropping || status == statusDropped:
		return fmt.Errorf("%w: %s slice %d", errSliceDropped, st.name, slice)
	}
	if err := e.setSliceStatus(ctx, st, slice, statusCreating); err != nil {
		return err
	}
	ks := st.keyspace
	ev, po := eventsTable(slice), postingsTable(slice)
	// Data never expires by TTL and is never deleted row by row (the table is dropped whole),
	// so gc_grace only matters for the metadata table; compaction windows follow the slice.
	err = e.schemaChange(ctx, []string{
		"CREATE TABLE IF NOT EXISTS " + ks + "." + ev + ` (
			time_series_id text, time_bucket bigint, event_bucket smallint,
			event_time bigint, event_id text, item_key blob, item_value blob,
			PRIMARY KEY ((time_series_id, time_bucket, event_bucket), event_time, event_id, item_key)
		) WITH CLUSTERING ORDER BY (event_time DESC, event_id ASC, item_key ASC)` + tableID(ks, ev),
		"CREATE TABLE IF NOT EXISTS " + ks + "." + po + ` (
			field text, kind tinyint, time_bucket bigint, value blob,
			event_time bigint, time_series_id text, event_id text, int_value bigint,
			PRIMARY KEY ((field, kind, time_bucket, value), event_time, time_series_id, event_id)
		) WITH CLUSTERING ORDER BY (event_time DESC, time_series_id ASC, event_id ASC)` + tableID(ks, po),
	})
	if err != nil {
		return err
	}
	return e.setSliceStatus(ctx, st, slice, statusActive)
}

func (e *Engine) setSliceStatus(ctx context.Context, st *nsState, slice int64, status string) error {
	err := e.session.Query("INSERT INTO "+st.keyspace+".slices (namespace, slice_start, slice_end, status, seconds_per_time_slice, seconds_per_time_bucket, event_buckets, events_table, postings_table, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		st.name, slice, slice+st.cfg.SliceMs, status, st.cfg.SliceMs/1000, st.cfg.BucketMs/1000, st.cfg.EventBuckets,
		eventsTable(slice), postingsTable(slice), e.now()).
		Consistency(gocql.LocalQuorum).WithTimestamp(e.clock.next()).ExecContext(ctx)
	if err != nil {
		return fmt.Errorf("cassandraengine: mark slice %d %s: %w", slice, status, err)
	}
	return nil
}

// DropSlice implements storage.Engine: the slice is marked DROPPING (readers stop listing
// it), both its tables are dropped whole, and it is marked DROPPED.
func (e *Engine) DropSlice(ctx context.Context, ns string, slice int64) error {
	st, err := e.namespace(ns)
	if err != nil {
		return err
	}
	if err := e.setSliceStatus(ctx, st, slice, statusDropping); err != nil {
		return err
	}
	st.mu.Lock()
	delete(st.ready, slice)
	delete(st.stmts, slice)
	st.mu.Unlock()
	ks := st.keyspace
	if err := e.schemaChange(ctx, []string{
		"DROP TABLE IF EXISTS " + ks + "." + eventsTable(slice),
		"DROP TABLE IF EXISTS " + ks + "." + postingsTable(slice),
	}); err != nil {
		return err
	}
	return e.setSliceStatus(ctx, st, slice, statusDropped)
}

// controlLoop keeps the current slice and SlicesAhead more created for every namespace, so
// writes rarely wait for a schema change.
func (e *Engine) controlLoop() {
	defer close(e.loopDone)
	t := time.NewTicker(e.opts.ControlInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stopLoop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.ControlInterval)
		go func() {
			select {
			case <-e.stopLoop:
				cancel()
			case <-ctx.Done():
			}
		}()
		e.ensureUpcoming(ctx)
		cancel()
	}
}

func (e *Engine) ensureUpcoming(ctx context.Context) {
	if e.opts.SlicesAhead < 0 {
		return
	}
	e.mu.RLock()
	list := make([]*nsState, 0, len(e.namespaces))
	for _, st := range e.namespaces {
		list = append(list, st)
	}
	e.mu.RUnlock()
	now := e.now().UnixMilli()
	for _, st := range list {
		cur := now - now%st.cfg.SliceMs
		for i := 0; i <= e.opts.SlicesAhead; i++ {
			if err := e.ensureSlice(ctx, st, cur+int64(i)*st.cfg.SliceMs); err != nil {
				if ctx.Err() == nil {
					e.logf("cassandraengine: namespace %s: create upcoming slice: %v", st.name, err)
				}
				break
			}
		}
	}
}

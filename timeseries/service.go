package timeseries

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Service serves the TimeSeries API for a set of namespaces over one engine.
type Service struct {
	engine      storage.Engine
	ownsEngine  bool
	now         func() time.Time
	logf        func(string, ...any)
	maxBody     int
	noRetention bool

	mu       sync.Mutex // serialises Reconfigure and Close
	state    atomic.Pointer[serviceState]
	closed   atomic.Bool
	gate     sync.RWMutex   // requests hold it shared; Close takes it to wait them out
	inflight sync.WaitGroup // sync writes whose commit may outlive the request (SLO timeout)

	stopRetention chan struct{}
	retentionDone chan struct{}
}

// serviceState is an immutable snapshot swapped on Reconfigure; requests use the snapshot
// they started with.
type serviceState struct {
	cfg        Config
	namespaces map[string]*namespace
}

// namespace is one dataset's immutable config plus its long-lived write queue.
type namespace struct {
	name   string
	cfg    NamespaceConfig
	slices *sliceTable // shared by every snapshot, like queue
	queue  *writeQueue
	// fieldNames interns the indexed field names (each maps to itself), so an index entry
	// names its field without a string per event.
	fieldNames map[string]string
}

// readableFrom is the earliest slice end still open for reads at now: a slice whose end is
// retention.close_after or more in the past is closed, to reads as well as writes.
func (ns *namespace) readableFrom(now time.Time) int64 {
	return now.UnixMilli() - ns.cfg.Retention.CloseAfter.Milliseconds()
}

// Option customises a Service.
type Option func(*Service)

// WithClock replaces time.Now (tests use it to move time for acceptLimit and retention).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogf sets where background errors (async write failures, retention) are reported.
func WithLogf(logf func(string, ...any)) Option { return func(s *Service) { s.logf = logf } }

// WithMaxBodyBytes bounds the request bodies Serve accepts. Default 16 MiB.
func WithMaxBodyBytes(n int) Option { return func(s *Service) { s.maxBody = n } }

// WithoutRetentionLoop disables the background retention loop; EnforceRetention can still be
// called directly.
func WithoutRetentionLoop() Option { return func(s *Service) { s.noRetention = true } }

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("timeseries: service is closed")

// Open opens the embedded pebble engine in dir, and every other engine cfg's namespaces select
// (see engines.go), and serves cfg from them; Close closes the engines.
func Open(dir string, cfg Config, opts ...Option) (*Service, error) {
	probe := &Service{logf: func(string, ...any) {}}
	for _, o := range opts {
		o(probe)
	}
	eng, err := openEngines(dir, cfg, probe.logf)
	if err != nil {
		return nil, err
	}
	s, err := New(cfg, eng, opts...)
	if err != nil {
		return nil, errors.Join(err, eng.Close())
	}
	s.ownsEngine = true
	return s, nil
}

// New serves cfg from engine. The caller keeps ownership of engine and closes it after Close.
// cfg gets defaults applied and must validate.
func New(cfg Config, engine storage.Engine, opts ...Option) (*Service, error) {
	if engine == nil {
		return nil, errors.New("timeseries: engine is nil")
	}
	s := &Service{engine: engine, now: time.Now, logf: func(string, ...any) {}, maxBody: 16 << 20}
	for _, o := range opts {
		o(s)
	}
	st, err := s.buildState(cloneConfig(cfg), nil)
	if err != nil {
		return nil, err
	}
	for _, ns := range st.namespaces {
		ns.queue.start()
	}
	s.state.Store(st)
	if !s.noRetention {
		s.stopRetention = make(chan struct{})
		s.retentionDone = make(chan struct{})
		go s.retentionLoop()
	}
	return s, nil
}

func cloneConfig(c Config) Config {
	out := c
	out.Namespaces = make(map[string]NamespaceConfig, len(c.Namespaces))
	for k, v := range c.Namespaces {
		fm := make(map[string]FieldType, len(v.Index.FieldMapping))
		for f, t := range v.Index.FieldMapping {
			fm[f] = t
		}
		v.Index.FieldMapping = fm
		out.Namespaces[k] = v
	}
	return out
}

// buildState validates cfg and builds a snapshot, reusing queues of namespaces in prev.
func (s *Service) buildState(cfg Config, prev *serviceState) (*serviceState, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st := &serviceState{cfg: cfg, namespaces: make(map[string]*namespace, len(cfg.Namespaces))}
	for name, nc := range cfg.Namespaces {
		ns := &namespace{name: name, cfg: nc, fieldNames: make(map[string]string, len(nc.Index.FieldMapping))}
		for field := range nc.Index.FieldMapping {
			ns.fieldNames[field] = field
		}
		if prev != nil {
			if old, ok := prev.namespaces[name]; ok {
				// A new time_partition applies to slices created from now on; the slice
				// table keeps each existing slice's own partitioning.
				ns.queue, ns.slices = old.queue, old.slices
			}
		}
		st.namespaces[name] = ns
	}
	for name, ns := range st.namespaces {
		if ns.slices == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			tbl, err := newSliceTable(ctx, name, s.engine)
			cancel()
			if err != nil {
				return nil, err
			}
			ns.slices = tbl
		}
		if ns.queue == nil {
			ns.queue = newWriteQueue(name, s.engine, s.logf)
		}
		ns.queue.configure(ns.cfg.QueueBuffering)
	}
	return st, nil
}

// Reconfigure swaps in a new configuration. Everything but a namespace's time partitioning
// may change; new namespaces start serving, removed ones stop accepting and have their queue
// flushed. On error the running configuration is kept.
func (s *Service) Reconfigure(cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	prev := s.state.Load()
	st, err := s.buildState(cloneConfig(cfg), prev)
	if err != nil {
		return err
	}
	if err := s.reconfigureEngines(st.cfg, prev.cfg); err != nil {
		return err
	}
	for _, ns := range st.namespaces {
		ns.queue.start()
	}
	s.state.Store(st)
	for name, ns := range prev.namespaces {
		if _, kept := st.namespaces[name]; !kept {
			ns.queue.close()
		}
	}
	return nil
}

// Namespaces lists the namespaces currently served.
func (s *Service) Namespaces() []string {
	st := s.state.Load()
	out := make([]string, 0, len(st.namespaces))
	for n := range st.namespaces {
		out = append(out, n)
	}
	return out
}

// Close stops accepting requests, flushes every async queue durably, stops retention, waits
// for sync writes still committing, and closes the engine if Open created it. ctx bounds the
// wait for queues to drain.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Requests already inside Serve finish (each is bounded by its SLO max); later ones see
	// closed and get 503.
	s.gate.Lock()
	//lint:ignore SA2001 the empty critical section is the barrier: it waits out in-flight requests
	s.gate.Unlock()
	if s.stopRetention != nil {
		close(s.stopRetention)
		<-s.retentionDone
	}
	var errs []error
	for _, ns := range s.state.Load().namespaces {
		ns.queue.beginClose()
	}
	for name, ns := range s.state.Load().namespaces {
		if err := ns.queue.waitClosed(ctx); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", name, err))
		}
	}
	s.inflight.Wait()
	if s.ownsEngine {
		errs = append(errs, s.engine.Close())
	}
	return errors.Join(errs...)
}

// Handle is Serve without the Retry-After hint.
func (s *Service) Handle(ctx context.Context, operation string, body []byte) (status int, respBody []byte) {
	r := s.Serve(ctx, operation, body)
	return r.Status, r.Body
}

// Serve runs one operation on a JSON body and returns the JSON answer. It never panics on bad
// input and does not keep body after returning.
func (s *Service) Serve(ctx context.Context, operation string, body []byte) Response {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.closed.Load() {
		return (&apiError{status: http.StatusServiceUnavailable, msg: "timeseries service is shutting down", eventIndex: -1, reason: "closing", retryAfter: time.Second}).response()
	}
	if len(body) > s.maxBody {
		return (&apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body of %d bytes is over the limit of %d", len(body), s.maxBody), eventIndex: -1, reason: "too_large"}).response()
	}
	var (
		out  any
		code = http.StatusOK
		aerr *apiError
	)
	switch operation {
	case OpWriteSync, OpWrite:
		var req WriteRequest
		if !decodeWriteFast(body, &req) {
			aerr = decode(body, &req)
		}
		if aerr == nil {
			if operation == OpWriteSync {
				out, aerr = s.writeSync(ctx, &req)
			} else {
				out, aerr = s.writeAsync(ctx, &req)
				code = http.StatusAccepted
			}
		}
	case OpRead:
		var req ReadRequest
		if aerr = decode(body, &req); aerr == nil {
			out, aerr = s.read(ctx, &req)
		}
	case OpSearch:
		var req SearchRequest
		if aerr = decode(body, &req); aerr == nil {
			out, aerr = s.search(ctx, &req)
		}
	case OpAggregate:
		var req AggregateRequest
		if aerr = decode(body, &req); aerr == nil {
			out, aerr = s.aggregate(ctx, &req)
		}
	default:
		aerr = &apiError{status: http.StatusNotFound, msg: fmt.Sprintf("unknown operation %q", operation), eventIndex: -1, reason: "unknown_operation"}
	}
	if aerr != nil {
		return aerr.response()
	}
	b, err := marshalAnswer(out)
	if err != nil {
		return internalError(err).response()
	}
	return Response{Status: code, Body: b}
}

func internalError(err error) *apiError {
	return &apiError{status: http.StatusInternalServerError, msg: "storage error: " + err.Error(), eventIndex: -1, reason: "internal"}
}

// lookup returns the namespace or a 404 naming the field.
func (s *Service) lookup(name string) (*namespace, *apiError) {
	if name == "" {
		return nil, badField("namespace", "is required")
	}
	ns, ok := s.state.Load().namespaces[name]
	if !ok {
		e := badField("namespace", fmt.Sprintf("unknown namespace %q", name))
		e.status = http.StatusNotFound
		return nil, e
	}
	return ns, nil
}

// storageError maps an engine error during a request to a status.
func storageError(ctx context.Context, err error) *apiError {
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return &apiError{status: 499, msg: "request cancelled", eventIndex: -1, reason: "cancelled"}
	}
	return internalError(err)
}

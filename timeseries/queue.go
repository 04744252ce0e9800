package timeseries

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// writeQueue buffers one namespace's async writes in memory, coalesces them for a short
// window and writes them in batches. It is bounded: a write that does not fit is rejected,
// never dropped silently. Queued events live only in memory until written, so a crash loses
// them; Close writes them durably.
type writeQueue struct {
	ns     string
	engine storage.Engine
	logf   func(string, ...any)

	mu       sync.Mutex
	cfg      QueueBuffering
	pending  []storage.Write
	index    map[eventKey]int // position in pending, to coalesce duplicates
	held     int              // events pending or being written; bounded by cfg.BufferCapacity
	closing  bool
	started  bool
	dropped  int64
	unsynced bool          // a Buffered batch was written since the last durable one
	kick     chan struct{} // something was queued
	full     chan struct{} // a batch is ready; skip the coalesce wait
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type eventKey struct {
	tsid string
	time int64
	id   string
}

func newWriteQueue(ns string, engine storage.Engine, logf func(string, ...any)) *writeQueue {
	return &writeQueue{
		ns: ns, engine: engine, logf: logf,
		index: make(map[eventKey]int),
		kick:  make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

func (q *writeQueue) configure(c QueueBuffering) {
	q.mu.Lock()
	q.cfg = c
	q.mu.Unlock()
}

func (q *writeQueue) start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.started {
		q.started = true
		go q.run()
	}
}

// errQueueFull and errQueueClosing are returned by enqueue.
var (
	errQueueFull    = errors.New("queue full")
	errQueueClosing = errors.New("queue closing")
)

// enqueue admits all of ws or none of them.
func (q *writeQueue) enqueue(ws []storage.Write) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return errQueueClosing
	}
	if q.held+len(ws) > q.cfg.BufferCapacity {
		return errQueueFull
	}
	for _, w := range ws {
		k := eventKey{w.Event.TimeSeriesID, w.Event.Time, w.Event.ID}
		if i, dup := q.index[k]; dup {
			q.pending[i] = w // the engine would keep the last write anyway
			continue
		}
		q.index[k] = len(q.pending)
		q.pending = append(q.pending, w)
		q.held++
	}
	signal(q.kick)
	if len(q.pending) >= q.cfg.MaxBatchEvents {
		signal(q.full)
	}
	return nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *writeQueue) run() {
	defer close(q.done)
	for {
		select {
		case <-q.kick:
		case <-q.stop:
			q.finalFlush()
			return
		}
		q.mu.Lock()
		wait := q.cfg.Coalesce
		q.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-q.full:
			t.Stop()
		case <-q.stop:
			t.Stop()
			q.finalFlush()
			return
		}
		q.flush(storage.Buffered)
	}
}

// finalFlush writes what is left durably; an empty durable batch still syncs the writes
// that earlier buffered batches left in the engine's log.
func (q *writeQueue) finalFlush() {
	q.flush(storage.Durable)
	if q.unsynced {
		q.write(nil, storage.Durable)
	}
}

// flush writes everything pending in batches of at most MaxBatchEvents.
func (q *writeQueue) flush(d storage.Durability) {
	q.mu.Lock()
	batch := q.pending
	max := q.cfg.MaxBatchEvents
	q.pending = nil
	q.index = make(map[eventKey]int)
	q.mu.Unlock()
	for len(batch) > 0 {
		n := min(len(batch), max)
		q.write(batch[:n], d)
		batch = batch[n:]
		q.mu.Lock()
		q.held -= n
		q.mu.Unlock()
	}
}

// write retries a failed batch a few times: the events were already acknowledged (202), so
// giving up is a loss we count and log loudly.
func (q *writeQueue) write(ws []storage.Write, d storage.Durability) {
	b := &storage.Batch{Namespace: q.ns, Writes: ws}
	backoff := 50 * time.Millisecond
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if err = q.engine.Apply(context.Background(), b, d); err == nil {
			q.unsynced = d == storage.Buffered
			return
		}
		if attempt < 3 {
			time.Sleep(backoff)
			backoff *= 2
		}
	}
	q.mu.Lock()
	q.dropped += int64(len(ws))
	q.mu.Unlock()
	q.logf("timeseries: namespace %s: async write of %d events failed, events lost: %v", q.ns, len(ws), err)
}

// beginClose stops admissions and asks the writer to flush durably and exit.
func (q *writeQueue) beginClose() {
	q.mu.Lock()
	q.closing = true
	started := q.started
	q.mu.Unlock()
	q.stopOnce.Do(func() {
		close(q.stop)
		if !started {
			close(q.done)
		}
	})
}

func (q *writeQueue) waitClosed(ctx context.Context) error {
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("async queue not drained: %w", ctx.Err())
	}
}

func (q *writeQueue) close() {
	q.beginClose()
	<-q.done
}

// stats reports the queue's occupancy and losses.
func (q *writeQueue) stats() (held, capacity int, dropped int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held, q.cfg.BufferCapacity, q.dropped
}

// writeAsync validates the whole batch, then enqueues it whole or rejects it whole.
func (s *Service) writeAsync(ctx context.Context, req *WriteRequest) (*WriteResponse, *apiError) {
	ns, aerr := s.lookup(req.Namespace)
	if aerr != nil {
		return nil, aerr
	}
	ws, aerr := s.buildWrites(ctx, ns, req, s.now())
	if aerr != nil {
		return nil, aerr
	}
	switch err := ns.queue.enqueue(ws); {
	case errors.Is(err, errQueueFull):
		held, capacity, _ := ns.queue.stats()
		return nil, &apiError{
			status:     http.StatusServiceUnavailable,
			msg:        fmt.Sprintf("write queue of namespace %s is full (%d of %d events held); retry later or use WriteEventRecordsSync", ns.name, held, capacity),
			eventIndex: -1, reason: "queue_full", retryAfter: time.Second,
		}
	case err != nil:
		return nil, &apiError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf("namespace %s is shutting down", ns.name), eventIndex: -1, reason: "closing", retryAfter: time.Second}
	}
	return &WriteResponse{Accepted: len(req.Events)}, nil
}

// writeSync commits the batch durably. If the write SLO max passes first it answers 504; the
// commit may still land, and retrying is safe because writes are idempotent.
func (s *Service) writeSync(ctx context.Context, req *WriteRequest) (*WriteResponse, *apiError) {
	ns, aerr := s.lookup(req.Namespace)
	if aerr != nil {
		return nil, aerr
	}
	ws, aerr := s.buildWrites(ctx, ns, req, s.now())
	if aerr != nil {
		return nil, aerr
	}
	done := make(chan error, 1)
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		// The commit is not cancelled with the request: a half-acknowledged batch is worse
		// than a completed one the client did not wait for.
		done <- s.engine.Apply(context.WithoutCancel(ctx), &storage.Batch{Namespace: ns.name, Writes: ws}, storage.Durable)
	}()
	t := time.NewTimer(ns.cfg.SLOs.Write.Max)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return nil, internalError(err)
		}
		return &WriteResponse{Written: len(ws)}, nil
	case <-t.C:
		return nil, &apiError{status: http.StatusGatewayTimeout, msg: fmt.Sprintf("write did not become durable within slos.write.max (%s); it may still complete, retrying is safe (writes are idempotent)", ns.cfg.SLOs.Write.Max), eventIndex: -1, reason: "write_timeout"}
	case <-ctx.Done():
		return nil, &apiError{status: 499, msg: "request cancelled before the write was acknowledged; it may still complete, retrying is safe", eventIndex: -1, reason: "cancelled"}
	}
}

// QueueStats describes one namespace's async queue.
type QueueStats struct {
	Held     int
	Capacity int
	Dropped  int64
}

// QueueStats reports each namespace's async queue occupancy and write losses.
func (s *Service) QueueStats() map[string]QueueStats {
	out := map[string]QueueStats{}
	for name, ns := range s.state.Load().namespaces {
		h, c, d := ns.queue.stats()
		out[name] = QueueStats{Held: h, Capacity: c, Dropped: d}
	}
	return out
}

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
// window and writes them in batches from several writer goroutines (shards), so one
// namespace's ingest is not bound to one core. An event always goes to the same shard (by
// its idempotency key), so writes of one event keep their order, and a re-write waiting in
// the queue is merged into the queued one per item, exactly as the engine merges a re-write
// of a stored event.
//
// It is bounded in events and in bytes: a write that does not fit is rejected whole, never
// dropped silently. Queued events live only in memory until written, so a crash loses them;
// Close writes them durably.
type writeQueue struct {
	ns     string
	engine storage.Engine
	logf   func(string, ...any)

	mu        sync.Mutex
	cfg       QueueBuffering
	shards    []*queueShard
	held      int   // events pending or being written; bounded by cfg.BufferCapacity
	heldBytes int64 // their approximate memory; bounded by cfg.BufferBytes
	closing   bool
	started   bool
	lost      int64         // acknowledged events whose write failed for good
	room      chan struct{} // closed (and replaced) whenever writers free room
	stop      chan struct{}
	wg        sync.WaitGroup
	done      chan struct{}
	stopOnce  sync.Once
}

// queueShard is one writer goroutine's share of the queue; its fields are guarded by the
// queue's mu.
//
// Pending writes are kept in chunks of at most max_batch_events, oldest first, and the writer
// takes one chunk per engine batch. A deep queue (producers ahead of the store) then costs
// nothing per event beyond its chunk: one growing array of everything pending had to be
// copied as it grew, which was a tenth of in-process ingest CPU.
type queueShard struct {
	chunks   []*queueChunk // oldest first; producers append to the last
	free     []*queueChunk // written chunks kept for reuse
	index    pendingIndex  // where each pending event is, to merge re-writes
	unsynced bool          // a Buffered batch was written since the last durable one (writer-owned)
	kick     chan struct{} // something was queued
	full     chan struct{} // a batch is ready; skip the coalesce wait
}

// queueChunk is one future engine batch.
type queueChunk struct {
	writes []storage.Write
	sizes  []int64 // memory of writes[i], for the byte bound
	bytes  int64   // their sum
}

// queueSlot is where a pending event sits: its chunk and its position in it.
type queueSlot struct {
	chunk *queueChunk
	pos   int
}

// maxFreeChunks bounds the written chunks a shard keeps for reuse.
const maxFreeChunks = 2

type eventKey struct {
	tsid string
	time int64
	id   string
}

func newWriteQueue(ns string, engine storage.Engine, logf func(string, ...any)) *writeQueue {
	return &writeQueue{ns: ns, engine: engine, logf: logf, stop: make(chan struct{}), done: make(chan struct{}), room: make(chan struct{})}
}

func (q *writeQueue) configure(c QueueBuffering) {
	q.mu.Lock()
	q.cfg = c
	q.mu.Unlock()
}

// start launches the writers; their number is fixed at the first start (queue_buffering.writers
// of later reloads applies after a restart).
func (q *writeQueue) start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started {
		return
	}
	q.started = true
	n := max(1, q.cfg.Writers)
	for i := 0; i < n; i++ {
		sh := &queueShard{index: newPendingIndex(), kick: make(chan struct{}, 1), full: make(chan struct{}, 1)}
		q.shards = append(q.shards, sh)
		q.wg.Add(1)
		go q.run(sh)
	}
	go func() {
		q.wg.Wait()
		close(q.done)
	}()
}

// errQueueFull and errQueueClosing are returned by enqueue.
var (
	errQueueFull    = errors.New("queue full")
	errQueueClosing = errors.New("queue closing")
)

// writeBytes approximates the memory a queued write holds.
func writeBytes(w *storage.Write) int64 {
	n := int64(128 + len(w.Event.TimeSeriesID) + len(w.Event.ID))
	for _, it := range w.Event.Items {
		n += int64(48 + len(it.Key) + len(it.Value))
	}
	for _, ix := range w.Index {
		n += int64(80 + len(ix.Field) + len(ix.Value) + len(ix.Raw))
	}
	return n
}

// shard picks the writer of an event from its idempotency key (tsid aside: keys equal in
// everything else still land together, which is all ordering needs).
func (k eventKey) shard(n int) int { return int(eventBucket(k.time, k.id, n)) }

// enqueue admits all of ws or none of them. A batch that does not fit waits up to
// queue_buffering.full_wait for the writers to make room, then is refused with errQueueFull.
func (q *writeQueue) enqueue(ctx context.Context, ws []storage.Write) error {
	var bytes int64
	sizes := make([]int64, len(ws))
	for i := range ws {
		sizes[i] = writeBytes(&ws[i])
		bytes += sizes[i]
	}
	var deadline *time.Timer
	for {
		q.mu.Lock()
		if q.closing || !q.started {
			q.mu.Unlock()
			return errQueueClosing
		}
		if q.held+len(ws) <= q.cfg.BufferCapacity && q.heldBytes+bytes <= int64(q.cfg.BufferBytes) {
			q.admitLocked(ws, sizes)
			q.mu.Unlock()
			return nil
		}
		// A batch larger than the whole queue never fits; do not make it wait.
		if q.cfg.FullWait <= 0 || len(ws) > q.cfg.BufferCapacity || bytes > int64(q.cfg.BufferBytes) {
			q.mu.Unlock()
			return errQueueFull
		}
		if deadline == nil {
			deadline = time.NewTimer(q.cfg.FullWait)
			defer deadline.Stop()
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-deadline.C:
			return errQueueFull
		case <-ctx.Done():
			return ctx.Err()
		case <-q.stop:
			return errQueueClosing
		}
	}
}

// admitLocked queues ws (whose memory is sizes), merging re-writes of queued events.
func (q *writeQueue) admitLocked(ws []storage.Write, sizes []int64) {
	maxBatch := q.cfg.MaxBatchEvents
	for i, w := range ws {
		k := eventKey{w.Event.TimeSeriesID, w.Event.Time, w.Event.ID}
		sh := q.shards[k.shard(len(q.shards))]
		if at, dup := sh.index.get(k); dup {
			c := at.chunk
			merged := mergeWrites(c.writes[at.pos], w)
			size := writeBytes(&merged)
			q.heldBytes += size - c.sizes[at.pos]
			c.bytes += size - c.sizes[at.pos]
			c.writes[at.pos], c.sizes[at.pos] = merged, size
			continue
		}
		c := sh.tail(maxBatch)
		sh.index.put(k, queueSlot{c, len(c.writes)})
		c.writes = append(c.writes, w)
		c.sizes = append(c.sizes, sizes[i])
		c.bytes += sizes[i]
		q.held++
		q.heldBytes += sizes[i]
		signal(sh.kick)
		if len(c.writes) >= maxBatch {
			signal(sh.full)
		}
	}
}

// tail is the chunk new writes go to: the last one, or a new one when that is full.
func (sh *queueShard) tail(maxBatch int) *queueChunk {
	if n := len(sh.chunks); n > 0 && len(sh.chunks[n-1].writes) < maxBatch {
		return sh.chunks[n-1]
	}
	var c *queueChunk
	if n := len(sh.free); n > 0 {
		c, sh.free = sh.free[n-1], sh.free[:n-1]
	} else {
		c = &queueChunk{writes: make([]storage.Write, 0, maxBatch), sizes: make([]int64, 0, maxBatch)}
	}
	sh.chunks = append(sh.chunks, c)
	return c
}

// mergeWrites applies newer on top of older per item, the way the engine merges a re-write:
// items of newer replace same-key items of older, the others are kept; index entries of
// both are kept (postings of both values, as two separate sync writes would leave), the
// newer last so it wins per field.
func mergeWrites(older, newer storage.Write) storage.Write {
	out := older
	items := make([]storage.Item, 0, len(older.Event.Items)+len(newer.Event.Items))
	for _, it := range older.Event.Items {
		replaced := false
		for _, n := range newer.Event.Items {
			if string(n.Key) == string(it.Key) {
				replaced = true
				break
			}
		}
		if !replaced {
			items = append(items, it)
		}
	}
	out.Event.Items = append(items, newer.Event.Items...)
	out.Index = append(append([]storage.IndexEntry(nil), older.Index...), newer.Index...)
	return out
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *writeQueue) run(sh *queueShard) {
	defer q.wg.Done()
	for {
		select {
		case <-sh.kick:
		case <-q.stop:
			q.finalFlush(sh)
			return
		}
		q.mu.Lock()
		wait := q.cfg.Coalesce
		q.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-sh.full:
			t.Stop()
		case <-q.stop:
			t.Stop()
			q.finalFlush(sh)
			return
		}
		q.flush(sh, storage.Buffered)
	}
}

// finalFlush writes what is left durably; an empty durable batch still syncs the writes
// that earlier buffered batches left in the engine's log.
func (q *writeQueue) finalFlush(sh *queueShard) {
	q.flush(sh, storage.Durable)
	if sh.unsynced {
		q.write(sh, nil, storage.Durable)
	}
}

// flush writes the chunks pending when it starts, one engine batch each; writes queued
// meanwhile wait for the next round (so they coalesce).
func (q *writeQueue) flush(sh *queueShard, d storage.Durability) {
	q.mu.Lock()
	n := len(sh.chunks)
	q.mu.Unlock()
	for ; n > 0; n-- {
		q.mu.Lock()
		c := sh.chunks[0]
		copy(sh.chunks, sh.chunks[1:])
		sh.chunks[len(sh.chunks)-1] = nil
		sh.chunks = sh.chunks[:len(sh.chunks)-1]
		for i := range c.writes { // taken: a re-write from now on is queued anew, after it
			w := &c.writes[i].Event
			sh.index.remove(eventKey{w.TimeSeriesID, w.Time, w.ID})
		}
		q.mu.Unlock()
		q.write(sh, c.writes, d)
		q.mu.Lock()
		q.held -= len(c.writes)
		q.heldBytes -= c.bytes
		close(q.room) // wake writes waiting for room
		q.room = make(chan struct{})
		if len(sh.free) < maxFreeChunks && cap(c.writes) <= 2*q.cfg.MaxBatchEvents {
			clear(c.writes) // do not keep written events alive
			c.writes, c.sizes, c.bytes = c.writes[:0], c.sizes[:0], 0
			sh.free = append(sh.free, c)
		}
		q.mu.Unlock()
	}
}

// write retries a failed batch a few times: the events were already acknowledged (202), so
// giving up is a loss we count (metric timeseries_async_events_lost_total) and log loudly.
func (q *writeQueue) write(sh *queueShard, ws []storage.Write, d storage.Durability) {
	b := &storage.Batch{Namespace: q.ns, Writes: ws}
	backoff := 50 * time.Millisecond
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if err = q.engine.Apply(context.Background(), b, d); err == nil {
			sh.unsynced = d == storage.Buffered
			return
		}
		if attempt < 3 {
			time.Sleep(backoff)
			backoff *= 2
		}
	}
	q.mu.Lock()
	q.lost += int64(len(ws))
	q.mu.Unlock()
	q.logf("timeseries: namespace %s: async write of %d events failed, events lost: %v", q.ns, len(ws), err)
}

// beginClose stops admissions and asks the writers to flush durably and exit.
func (q *writeQueue) beginClose() {
	q.mu.Lock()
	q.closing = true
	started := q.started
	q.started = true // a queue closed before it started never starts
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
func (q *writeQueue) stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{Held: q.held, Capacity: q.cfg.BufferCapacity, HeldBytes: q.heldBytes, CapacityBytes: int64(q.cfg.BufferBytes), Lost: q.lost}
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
	switch err := ns.queue.enqueue(ctx, ws); {
	case errors.Is(err, errQueueFull):
		st := ns.queue.stats()
		return nil, &apiError{
			status: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("write queue of namespace %s is full (%d of %d events, %d of %d bytes held); retry later or use WriteEventRecordsSync",
				ns.name, st.Held, st.Capacity, st.HeldBytes, st.CapacityBytes),
			eventIndex: -1, reason: "queue_full", retryAfter: time.Second,
		}
	case errors.Is(err, errQueueClosing):
		return nil, &apiError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf("namespace %s is shutting down", ns.name), eventIndex: -1, reason: "closing", retryAfter: time.Second}
	case err != nil:
		return nil, &apiError{status: 499, msg: "request cancelled while waiting for room in the write queue; nothing was queued", eventIndex: -1, reason: "cancelled"}
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
	Held          int   // events queued or being written
	Capacity      int   // queue_buffering.buffer_capacity
	HeldBytes     int64 // their approximate memory
	CapacityBytes int64 // queue_buffering.buffer_bytes
	Lost          int64 // acknowledged events whose write failed for good, since start
}

// QueueStats reports each namespace's async queue occupancy and write losses.
func (s *Service) QueueStats() map[string]QueueStats {
	out := map[string]QueueStats{}
	for name, ns := range s.state.Load().namespaces {
		out[name] = ns.queue.stats()
	}
	return out
}

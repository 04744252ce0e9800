package ratelimit

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/sony/gobreaker/v2"
)

var (
	//go:embed lua/gcra.lua
	gcraSource string
	//go:embed lua/acquire.lua
	acquireSource string
	//go:embed lua/renew.lua
	renewSource string

	// Scripts run by SHA (EVALSHA) and are sent once per Redis node, when
	// it answers NOSCRIPT; each decision is then one round trip.
	gcraScript    = redis.NewScript(gcraSource)
	acquireScript = redis.NewScript(acquireSource)
	renewScript   = redis.NewScript(renewSource)
)

// Key kinds: the part of a Redis key after the prefix saying which limiter
// owns it.
const (
	redisKindRate        = "rl:"
	redisKindConcurrency = "cc:"
)

// BreakerState mirrors the Redis breaker for metrics: 0 closed (Redis in
// use), 1 half-open (probing), 2 open (every decision is local).
type BreakerState int

// Breaker states, numbered like the origins' breaker gauge.
const (
	BreakerClosed BreakerState = iota
	BreakerHalfOpen
	BreakerOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "closed"
}

// errorLogInterval spaces the log lines about failing Redis calls: one per
// interval, with the count since the last one, not one per request.
const errorLogInterval = 10 * time.Second

// redisBackend is the Redis connection the redis backend decides through,
// behind a breaker that sends decisions to the local buckets while Redis
// fails and lets a probe through now and then to notice its recovery.
type redisBackend struct {
	cfg     RedisConfig
	client  redis.UniversalClient
	breaker *gobreaker.CircuitBreaker[[4]int64]
	logger  *slog.Logger
	// holderPrefix makes concurrency holder ids unique across the fleet
	// and across restarts of this process.
	holderPrefix string
	seq          atomic.Uint64

	state       atomic.Int32
	errs        atomic.Uint64
	unlogged    atomic.Uint64
	lastErrLog  atomic.Int64
	lastErrText atomic.Pointer[string]

	renewer *renewer
	// background tracks best-effort releases, awaited by close.
	background sync.WaitGroup
	// warmCancel stops the start-up warm-up; warmDone closes when it ends.
	warmCancel context.CancelFunc
	warmDone   chan struct{}
}

// warmTimeout bounds the start-up warm-up.
const warmTimeout = 5 * time.Second

func newRedisBackend(cfg RedisConfig, logger *slog.Logger) *redisBackend {
	cfg = cfg.WithDefaults()
	var id [6]byte
	_, _ = rand.Read(id[:])
	r := &redisBackend{cfg: cfg, logger: logger, holderPrefix: hex.EncodeToString(id[:]) + ":"}
	disabled := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if cfg.Cluster {
		r.client = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: cfg.Addrs, Username: cfg.Username, Password: cfg.Password,
			DialTimeout: cfg.Timeout, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
			ContextTimeoutEnabled: true, PoolSize: cfg.PoolSize, PoolTimeout: cfg.Timeout,
			// A script is not safe to retry (it may have run: a retried
			// decision charges a client twice), and a retry would outlive
			// the decision's timeout anyway. The cluster client retries
			// timeouts within its redirect budget whatever MaxRetries says,
			// so redirects go too: a decision that meets MOVED (during a
			// resharding) is made locally while the client reloads the
			// slot map.
			MaxRetries: -1, MaxRedirects: -1, DialerRetries: 1, DisableIdentity: true,
			MaintNotificationsConfig: disabled,
		})
	} else {
		r.client = redis.NewClient(&redis.Options{
			Addr: cfg.Addrs[0], Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
			DialTimeout: cfg.Timeout, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
			ContextTimeoutEnabled: true, PoolSize: cfg.PoolSize, PoolTimeout: cfg.Timeout,
			MaxRetries: -1, DialerRetries: 1, DisableIdentity: true,
			MaintNotificationsConfig: disabled,
		})
	}
	failures := uint32(cfg.Breaker.Failures)
	r.breaker = gobreaker.NewCircuitBreaker[[4]int64](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     cfg.Breaker.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			r.state.Store(int32(breakerState(to)))
			r.logTransition(from, to)
		},
	})
	r.renewer = newRenewer(r)
	ctx, cancel := context.WithTimeout(context.Background(), warmTimeout)
	r.warmCancel, r.warmDone = cancel, make(chan struct{})
	go r.warm(ctx)
	return r
}

// warm connects and loads the scripts on every node in the background, so
// the first decisions do not pay for dialling, the cluster's slot map and
// a NOSCRIPT round trip within their short timeout (and fall back to local
// limits because of it). A failure here is harmless: the decisions load
// what they need themselves.
func (r *redisBackend) warm(ctx context.Context) {
	defer close(r.warmDone)
	load := func(ctx context.Context, c redis.Scripter) error {
		for _, s := range []*redis.Script{gcraScript, acquireScript, renewScript} {
			if err := s.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return load(ctx, c) })
	} else {
		err = load(ctx, r.client)
	}
	if err != nil && ctx.Err() == nil {
		r.logger.Debug("redis warm-up failed; decisions will load the scripts", "error", err.Error())
	}
}

func breakerState(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	case gobreaker.StateOpen:
		return BreakerOpen
	}
	return BreakerClosed
}

func (r *redisBackend) logTransition(from, to gobreaker.State) {
	last := ""
	if p := r.lastErrText.Load(); p != nil {
		last = *p
	}
	switch to {
	case gobreaker.StateOpen:
		r.logger.Warn("redis rate-limit backend failing: deciding with local limits",
			"breaker", "open", "from", from.String(), "open_for", r.cfg.Breaker.OpenFor.String(), "last_error", last)
	case gobreaker.StateClosed:
		r.logger.Info("redis rate-limit backend recovered: fleet-wide limits resumed", "breaker", "closed")
	}
}

// noteError counts a failed call and logs it, at most once per
// errorLogInterval.
func (r *redisBackend) noteError(err error) {
	r.errs.Add(1)
	r.unlogged.Add(1)
	msg := err.Error()
	r.lastErrText.Store(&msg)
	now := time.Now().UnixNano()
	last := r.lastErrLog.Load()
	if now-last < int64(errorLogInterval) || !r.lastErrLog.CompareAndSwap(last, now) {
		return
	}
	r.logger.Warn("redis rate-limit call failed: decided with local limits",
		"error", msg, "failures_since_last_log", r.unlogged.Swap(0), "timeout", r.cfg.Timeout.String())
}

// call runs one script through the breaker within the decision timeout.
// An error means the caller must decide locally: Redis failed, or the
// breaker is open and did not try.
func (r *redisBackend) call(s *redis.Script, key string, args ...any) ([4]int64, error) {
	v, err := r.breaker.Execute(func() ([4]int64, error) {
		return runInts(r.deadline(), r.client, s, key, args...)
	})
	r.noteFailure(err)
	return v, err
}

// do is call for any command: fn gets the decision's deadline.
func (r *redisBackend) do(fn func(ctx context.Context) ([4]int64, error)) ([4]int64, error) {
	v, err := r.breaker.Execute(func() ([4]int64, error) { return fn(r.deadline()) })
	r.noteFailure(err)
	return v, err
}

func (r *redisBackend) deadline() context.Context {
	return deadlineContext{time.Now().Add(r.cfg.Timeout)}
}

// noteFailure counts and logs err unless it is the breaker refusing
// (nothing was tried then).
func (r *redisBackend) noteFailure(err error) {
	if err != nil && !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests) {
		r.noteError(err)
	}
}

// deadlineContext is a context with a deadline and no timer: the client
// (ContextTimeoutEnabled) turns the deadline into the connection's read and
// write deadlines, which is what bounds a decision, and a pool wait is
// bounded by PoolTimeout, the same timeout. context.WithTimeout would also
// start and stop a runtime timer per decision, for a Done channel nothing
// here waits on.
type deadlineContext struct{ deadline time.Time }

func (c deadlineContext) Deadline() (time.Time, bool) { return c.deadline, true }
func (deadlineContext) Done() <-chan struct{}         { return nil }
func (deadlineContext) Err() error                    { return nil }
func (deadlineContext) Value(any) any                 { return nil }

// key builds a Redis key: prefix, kind, policy, and the client key in a
// hash tag, so a Redis Cluster places each client's key by the client
// alone and one decision touches one slot. The client key is binary (see
// the filter's key encoding) and is hex-encoded so it can hold no brace.
func (r *redisBackend) key(kind, policy string, client []byte) string {
	b := make([]byte, 0, len(r.cfg.KeyPrefix)+len(kind)+len(policy)+3+2*len(client))
	b = append(b, r.cfg.KeyPrefix...)
	b = append(b, kind...)
	b = append(b, policy...)
	b = append(b, ":{"...)
	b = hex.AppendEncode(b, client)
	b = append(b, '}')
	return string(b)
}

// gcraArgs formats a policy's GCRA script arguments: the interval in
// microseconds per token, the burst, and how long an idle key is kept.
func gcraArgs(p Policy) [3]any {
	return [3]any{strconv.FormatFloat(1e6/p.Rate, 'g', -1, 64), p.Burst, strconv.FormatInt(p.IdleTimeout.Milliseconds(), 10)}
}

// allow decides one request of policy for client in Redis.
func (r *redisBackend) allow(policy string, sp *spec, client []byte) (Decision, error) {
	v, err := r.call(gcraScript, r.key(redisKindRate, policy, client), sp.gcraArgs[:]...)
	if err != nil {
		return Decision{}, err
	}
	return Decision{
		Policy:     policy,
		Allowed:    v[0] == 1,
		Limit:      sp.Burst,
		Remaining:  int(v[1]),
		Reset:      time.Duration(v[2]) * time.Microsecond,
		RetryAfter: time.Duration(v[3]) * time.Microsecond,
		Backend:    BackendRedis,
	}, nil
}

// acquire takes a slot of policy for client; holder is the new holder id.
func (r *redisBackend) acquire(policy string, sp *concSpec, client []byte) (key, holder string, res [4]int64, err error) {
	key = r.key(redisKindConcurrency, policy, client)
	holder = r.holderPrefix + strconv.FormatUint(r.seq.Add(1), 36)
	lease := strconv.FormatInt(sp.Lease.Milliseconds(), 10)
	res, err = r.call(acquireScript, key, sp.Max, lease, holder)
	if err != nil && !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests) {
		// The script may have run and taken a slot whose answer was lost
		// (a timeout): give it back rather than let it sit out its lease.
		// In the background, so the request is not delayed twice.
		r.background.Go(func() { _ = r.release(key, holder) })
	}
	return key, holder, res, err
}

// release gives a slot back. A failure leaves it to expire with its lease.
func (r *redisBackend) release(key, holder string) error {
	_, err := r.do(func(ctx context.Context) ([4]int64, error) {
		return [4]int64{}, r.client.ZRem(ctx, key, holder).Err()
	})
	return err
}

// runInts runs a script whose reply is a list of up to four integers, or
// one integer.
func runInts(ctx context.Context, c redis.Scripter, s *redis.Script, key string, args ...any) ([4]int64, error) {
	var out [4]int64
	reply, err := s.Run(ctx, c, []string{key}, args...).Result()
	if err != nil {
		return out, err
	}
	switch v := reply.(type) {
	case int64:
		out[0] = v
		return out, nil
	case []any:
		for i := 0; i < len(v) && i < len(out); i++ {
			n, ok := v[i].(int64)
			if !ok {
				return out, fmt.Errorf("redis script reply %v: element %d is %T, want an integer", v, i, v[i])
			}
			out[i] = n
		}
		return out, nil
	}
	return out, fmt.Errorf("redis script reply %v is %T, want integers", reply, reply)
}

// State reports the breaker's state.
func (r *redisBackend) State() BreakerState {
	// The breaker moves from open to half-open lazily, on the next call;
	// asking it makes the reported state current.
	return breakerState(r.breaker.State())
}

func (r *redisBackend) close() {
	r.warmCancel()
	<-r.warmDone
	r.renewer.close()
	r.background.Wait()
	if err := r.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		r.logger.Warn("closing the redis rate-limit client", "error", err.Error())
	}
}

// redisLease is one slot held in Redis by a live request, renewed until
// released.
type redisLease struct {
	key, holder string
	lease       time.Duration
	renewed     time.Time
}

// renewer extends the leases of live requests every third of their lease,
// so only a crashed gateway's slots ever expire.
type renewer struct {
	r      *redisBackend
	mu     sync.Mutex
	leases map[*redisLease]struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// renewTick is how often the renewer looks for leases due; a lease is
// renewed once a third of it has passed, so the shortest lease (minLease)
// is renewed about every 100 ms.
const renewTick = minLease / 3

func newRenewer(r *redisBackend) *renewer {
	rn := &renewer{r: r, leases: map[*redisLease]struct{}{}, stop: make(chan struct{}), done: make(chan struct{})}
	go rn.loop()
	return rn
}

func (rn *renewer) add(l *redisLease) {
	rn.mu.Lock()
	rn.leases[l] = struct{}{}
	rn.mu.Unlock()
}

func (rn *renewer) remove(l *redisLease) {
	rn.mu.Lock()
	delete(rn.leases, l)
	rn.mu.Unlock()
}

func (rn *renewer) loop() {
	defer close(rn.done)
	t := time.NewTicker(renewTick)
	defer t.Stop()
	for {
		select {
		case <-rn.stop:
			return
		case now := <-t.C:
			rn.renewDue(now)
		}
	}
}

// renewDue renews, one script call per key, every lease past a third of
// its length. A failure is retried on the next tick; a lease that expires
// meanwhile lets its slot go, which is the price of not over-admitting.
func (rn *renewer) renewDue(now time.Time) {
	type batch struct {
		lease   time.Duration
		holders []any
		leases  []*redisLease
	}
	due := map[string]*batch{}
	rn.mu.Lock()
	for l := range rn.leases {
		if now.Sub(l.renewed) < l.lease/3 {
			continue
		}
		b := due[l.key]
		if b == nil {
			b = &batch{lease: l.lease}
			due[l.key] = b
		}
		b.lease = max(b.lease, l.lease)
		b.holders = append(b.holders, l.holder)
		b.leases = append(b.leases, l)
	}
	rn.mu.Unlock()
	for key, b := range due {
		args := append([]any{strconv.FormatInt(b.lease.Milliseconds(), 10)}, b.holders...)
		_, err := rn.r.do(func(ctx context.Context) ([4]int64, error) {
			return runInts(ctx, rn.r.client, renewScript, key, args...)
		})
		if err != nil {
			continue
		}
		rn.mu.Lock()
		for _, l := range b.leases {
			l.renewed = now
		}
		rn.mu.Unlock()
	}
}

func (rn *renewer) close() {
	rn.once.Do(func() { close(rn.stop) })
	<-rn.done
}

// MarshalText names the state in JSON (the admin API).
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

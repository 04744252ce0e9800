package ratelimit

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Defaults of the Redis connection.
const (
	// DefaultRedisKeyPrefix starts every key Floodgate writes, so a Redis
	// shared with other applications can tell them apart.
	DefaultRedisKeyPrefix = "floodgate:"
	// DefaultRedisTimeout bounds one decision's round trip. A loopback or
	// same-rack Redis answers in well under a millisecond; past this the
	// request is decided by the local bucket instead of waiting.
	DefaultRedisTimeout = 50 * time.Millisecond
	// DefaultBreakerFailures consecutive failures open the breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpenFor is how long an open breaker sends every decision
	// to the local buckets before letting a probe through.
	DefaultBreakerOpenFor = 2 * time.Second
)

// RedisConfig is the Redis connection of the redis backend.
type RedisConfig struct {
	// Addrs are host:port addresses: one for a single Redis; with Cluster,
	// any nodes of the cluster (the client discovers the rest).
	Addrs []string `mapstructure:"addrs" json:"addrs,omitempty"`
	// Cluster selects the Redis Cluster protocol.
	Cluster  bool   `mapstructure:"cluster" json:"cluster,omitempty"`
	Username string `mapstructure:"username" json:"username,omitempty"`
	Password string `mapstructure:"password" json:"-"`
	// DB is the database number of a single Redis (Cluster has only 0).
	DB int `mapstructure:"db" json:"db,omitempty"`
	// KeyPrefix starts every key; keys are
	// <prefix>rl:<policy>:{<client key>} for rate limits and
	// <prefix>cc:<policy>:{<client key>} for concurrency limits.
	KeyPrefix string `mapstructure:"key_prefix" json:"key_prefix,omitempty"`
	// Timeout bounds one decision (connecting included); on expiry the
	// request is decided locally.
	Timeout time.Duration `mapstructure:"timeout" json:"timeout,omitempty"`
	// PoolSize caps connections per Redis node; 0 means go-redis's default
	// (10 per CPU).
	PoolSize int `mapstructure:"pool_size" json:"pool_size,omitempty"`
	// Breaker stops calling a failing Redis for a while.
	Breaker BreakerConfig `mapstructure:"breaker" json:"breaker"`
}

// BreakerConfig is the circuit breaker on the Redis connection.
type BreakerConfig struct {
	// Failures is how many consecutive failed decisions open it.
	Failures int `mapstructure:"failures" json:"failures,omitempty"`
	// OpenFor is how long it stays open before one probe decision tests
	// Redis again; success closes it, failure opens it for another OpenFor.
	OpenFor time.Duration `mapstructure:"open_for" json:"open_for,omitempty"`
}

func (r RedisConfig) validate(path string) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", path, field, fmt.Sprintf(format, args...)))
	}
	for i, a := range r.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add(fmt.Sprintf("addrs[%d]", i), "want host:port, got %q", a)
		}
	}
	if r.Cluster && r.DB != 0 {
		add("db", "Redis Cluster has only database 0, got %d", r.DB)
	}
	if r.DB < 0 {
		add("db", "must not be negative, got %d", r.DB)
	}
	if strings.ContainsAny(r.KeyPrefix, "{}") {
		add("key_prefix", "must not contain { or } (they mark the hash tag), got %q", r.KeyPrefix)
	}
	if r.Timeout < 0 {
		add("timeout", "must not be negative (0 means %s), got %s", DefaultRedisTimeout, r.Timeout)
	}
	if r.PoolSize < 0 {
		add("pool_size", "must not be negative, got %d", r.PoolSize)
	}
	if r.Breaker.Failures < 0 {
		add("breaker.failures", "must not be negative (0 means %d), got %d", DefaultBreakerFailures, r.Breaker.Failures)
	}
	if r.Breaker.OpenFor < 0 {
		add("breaker.open_for", "must not be negative (0 means %s), got %s", DefaultBreakerOpenFor, r.Breaker.OpenFor)
	}
	return errs
}

// WithDefaults returns r with zero-valued fields filled.
func (r RedisConfig) WithDefaults() RedisConfig {
	if r.KeyPrefix == "" {
		r.KeyPrefix = DefaultRedisKeyPrefix
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultRedisTimeout
	}
	if r.Breaker.Failures == 0 {
		r.Breaker.Failures = DefaultBreakerFailures
	}
	if r.Breaker.OpenFor == 0 {
		r.Breaker.OpenFor = DefaultBreakerOpenFor
	}
	return r
}

func (r RedisConfig) equal(o RedisConfig) bool {
	return slices.Equal(r.Addrs, o.Addrs) && r.Cluster == o.Cluster && r.Username == o.Username &&
		r.Password == o.Password && r.DB == o.DB && r.KeyPrefix == o.KeyPrefix && r.Timeout == o.Timeout &&
		r.PoolSize == o.PoolSize && r.Breaker == o.Breaker
}

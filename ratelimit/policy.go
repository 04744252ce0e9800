package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Defaults applied to a policy's zero-valued fields.
const (
	// DefaultMaxKeys bounds the buckets one policy tracks. A bucket costs
	// ~150 bytes with a short key (100k measured at 15 MB) and keys are
	// capped at ~100 bytes, so the default is ~25 MB at worst.
	DefaultMaxKeys = 100_000
	// DefaultIdleTimeout is how long a key must go unused before its bucket
	// may be dropped (it is also only dropped once it has refilled).
	DefaultIdleTimeout = time.Minute
	// DefaultIPv6Prefix groups IPv6 clients by /64: one subscriber usually
	// owns a whole /64, so limiting per address would be trivially evaded.
	DefaultIPv6Prefix = 64
	// maxKeyComponents bounds a key's parts so a key stays cheap to build.
	maxKeyComponents = 4
)

// Backend names where a policy keeps its state.
const (
	// BackendLocal keeps buckets in this gateway process (the default).
	BackendLocal = "local"
	// BackendRedis keeps them in Redis, shared by every gateway of a
	// fleet, and falls back to the local buckets when Redis fails.
	BackendRedis = "redis"
)

// Config is the rate-limiting section of the gateway config: the named
// policies that "rate_limit" and "concurrency_limit" filter instances refer
// to, and the Redis connection the redis backend uses.
type Config struct {
	Policies []Policy `mapstructure:"policies" json:"policies,omitempty"`
	// Concurrency are the named concurrent-request limits.
	Concurrency []ConcurrencyPolicy `mapstructure:"concurrency" json:"concurrency,omitempty"`
	// Redis is the connection shared by every policy with backend redis.
	Redis RedisConfig `mapstructure:"redis" json:"redis"`
}

// Policy is one named token bucket rule. Each distinct key gets its own
// bucket holding up to Burst tokens, refilled at Rate tokens per second;
// a request spends one token or is rejected.
type Policy struct {
	Name string `mapstructure:"name" json:"name"`
	// Rate is the sustained rate in requests per second (fractions allowed:
	// 0.5 is one request every two seconds).
	Rate float64 `mapstructure:"rate" json:"rate"`
	// Burst is the bucket size: how many requests a fresh or rested key may
	// send at once. 0 means one second's worth of Rate (at least 1).
	Burst int `mapstructure:"burst" json:"burst"`
	// Key lists what identifies a bucket: client_ip, route, or
	// header:<Name>; several parts combine (client_ip plus route gives each
	// client its own budget per route). Empty means client_ip.
	Key []string `mapstructure:"key" json:"key"`
	// MaxKeys caps the buckets tracked. When reached, requests from keys
	// not yet tracked share one overflow bucket (OverflowRate,
	// OverflowBurst) until idle buckets expire; tracked keys keep theirs.
	MaxKeys int `mapstructure:"max_keys" json:"max_keys"`
	// IdleTimeout is how long a key must be unused before its bucket may be
	// dropped; a bucket is dropped only once it is full again, so expiry
	// never hands a client tokens it would not have had anyway.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" json:"idle_timeout"`
	// OverflowRate and OverflowBurst size the shared overflow bucket;
	// 0 means the policy's Rate and Burst, i.e. all untracked keys together
	// get one key's budget while the table is full.
	OverflowRate  float64 `mapstructure:"overflow_rate" json:"overflow_rate,omitempty"`
	OverflowBurst int     `mapstructure:"overflow_burst" json:"overflow_burst,omitempty"`
	// IPv6Prefix is the prefix length client_ip groups IPv6 clients by;
	// 0 means 64, 128 limits each address separately.
	IPv6Prefix int `mapstructure:"ipv6_prefix" json:"ipv6_prefix,omitempty"`
	// Backend is local (the default) or redis: one bucket per key for the
	// whole fleet, kept in Redis, with this process's local bucket for the
	// key as the fallback while Redis fails. MaxKeys and the overflow
	// bucket bound the local buckets only; Redis keys expire instead.
	Backend string `mapstructure:"backend" json:"backend,omitempty"`
}

// Validate checks every policy, naming the field path of each problem.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, p := range c.Policies {
		path := fmt.Sprintf("policies[%d]", i)
		if j, dup := seen[p.Name]; dup && p.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name: %q is already defined by policies[%d]", path, p.Name, j))
		}
		seen[p.Name] = i
		errs = append(errs, p.validate(path)...)
		if p.Backend == BackendRedis && len(c.Redis.Addrs) == 0 {
			errs = append(errs, fmt.Errorf("%s.backend: redis needs rate_limit.redis.addrs", path))
		}
	}
	seenConc := map[string]int{}
	for i, p := range c.Concurrency {
		path := fmt.Sprintf("concurrency[%d]", i)
		if j, dup := seenConc[p.Name]; dup && p.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name: %q is already defined by concurrency[%d]", path, p.Name, j))
		}
		seenConc[p.Name] = i
		errs = append(errs, p.validate(path)...)
		if p.Backend == BackendRedis && len(c.Redis.Addrs) == 0 {
			errs = append(errs, fmt.Errorf("%s.backend: redis needs rate_limit.redis.addrs", path))
		}
	}
	errs = append(errs, c.Redis.validate("redis")...)
	return errors.Join(errs...)
}

// Validate checks one policy on its own; field paths are relative to it.
func (p Policy) Validate() error { return errors.Join(p.validate("")...) }

func (p Policy) validate(path string) []error {
	var errs []error
	add := fieldAdder(path, &errs)
	validateName(p.Name, add)
	if math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) || p.Rate <= 0 {
		add("rate", "must be a positive number of requests per second, got %v", p.Rate)
	}
	if p.Burst < 0 {
		add("burst", "must not be negative (0 means one second's worth of rate), got %d", p.Burst)
	}
	validateKey(p.Key, add)
	if p.MaxKeys < 0 {
		add("max_keys", "must not be negative (0 means %d), got %d", DefaultMaxKeys, p.MaxKeys)
	}
	if p.IdleTimeout < 0 {
		add("idle_timeout", "must not be negative (0 means %s), got %s", DefaultIdleTimeout, p.IdleTimeout)
	}
	if math.IsNaN(p.OverflowRate) || math.IsInf(p.OverflowRate, 0) || p.OverflowRate < 0 {
		add("overflow_rate", "must not be negative (0 means the policy's rate), got %v", p.OverflowRate)
	}
	if p.OverflowBurst < 0 {
		add("overflow_burst", "must not be negative (0 means the policy's burst), got %d", p.OverflowBurst)
	}
	if p.IPv6Prefix < 0 || p.IPv6Prefix > 128 {
		add("ipv6_prefix", "must be between 1 and 128 (0 means %d), got %d", DefaultIPv6Prefix, p.IPv6Prefix)
	}
	if err := validateBackend(p.Backend); err != nil {
		add("backend", "%v", err)
	}
	return errs
}

// fieldAdder returns the add function of a policy's validate: it appends one
// problem of field, named under path when path is not empty, to errs.
func fieldAdder(path string, errs *[]error) func(field, format string, args ...any) {
	return func(field, format string, args ...any) {
		if path != "" {
			field = path + "." + field
		}
		*errs = append(*errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
}

// validateName checks a policy's name, which appears in keys and messages.
func validateName(name string, add func(field, format string, args ...any)) {
	if name == "" {
		add("name", "must not be empty")
	} else if strings.ContainsAny(name, " \t\r\n\"") {
		add("name", "must not contain spaces or quotes, got %q", name)
	}
}

func validateBackend(b string) error {
	switch b {
	case "", BackendLocal, BackendRedis:
		return nil
	}
	return fmt.Errorf("unknown backend %q: want %s or %s", b, BackendLocal, BackendRedis)
}

// validateKey checks a key list, adding each problem under field.
func validateKey(key []string, add func(field, format string, args ...any)) {
	if len(key) > maxKeyComponents {
		add("key", "at most %d parts, got %d", maxKeyComponents, len(key))
	}
	for i, k := range key {
		if _, err := ParseKeyPart(k); err != nil {
			add(fmt.Sprintf("key[%d]", i), "%v", err)
		}
	}
}

// WithDefaults returns p with zero-valued fields filled; p must be valid.
func (p Policy) WithDefaults() Policy {
	if p.Burst == 0 {
		p.Burst = max(1, int(math.Ceil(p.Rate)))
	}
	if len(p.Key) == 0 {
		p.Key = []string{"client_ip"}
	}
	if p.MaxKeys == 0 {
		p.MaxKeys = DefaultMaxKeys
	}
	if p.IdleTimeout == 0 {
		p.IdleTimeout = DefaultIdleTimeout
	}
	if p.OverflowRate == 0 {
		p.OverflowRate = p.Rate
	}
	if p.OverflowBurst == 0 {
		p.OverflowBurst = p.Burst
	}
	if p.IPv6Prefix == 0 {
		p.IPv6Prefix = DefaultIPv6Prefix
	}
	if p.Backend == "" {
		p.Backend = BackendLocal
	}
	return p
}

// KeyPartKind is what one part of a policy's key is taken from.
type KeyPartKind uint8

// Key part kinds.
const (
	KeyClientIP KeyPartKind = iota + 1
	KeyRoute
	KeyHeader
)

// KeyPart is one parsed element of a policy's key.
type KeyPart struct {
	Kind KeyPartKind
	// Header is the header name of a KeyHeader part.
	Header string
}

// KeySpec is a policy's compiled key: what identifies a bucket.
type KeySpec struct {
	Parts []KeyPart
	// IPv6Prefix is the prefix length KeyClientIP groups IPv6 clients by.
	IPv6Prefix int
}

// ParseKeyPart parses one key part: client_ip, route or header:<Name>.
func ParseKeyPart(s string) (KeyPart, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "client_ip":
		return KeyPart{Kind: KeyClientIP}, nil
	case "route":
		return KeyPart{Kind: KeyRoute}, nil
	}
	if strings.HasPrefix(strings.ToLower(t), "header:") {
		name := t[len("header:"):]
		if name == "" || !isToken(name) {
			return KeyPart{}, fmt.Errorf("%q is not a valid header name", name)
		}
		return KeyPart{Kind: KeyHeader, Header: name}, nil
	}
	return KeyPart{}, fmt.Errorf("unknown key part %q: want client_ip, route or header:<Name>", s)
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func compileKey(key []string, ipv6Prefix int) KeySpec {
	ks := KeySpec{IPv6Prefix: ipv6Prefix}
	for _, s := range key {
		kp, _ := ParseKeyPart(s) // validated before
		ks.Parts = append(ks.Parts, kp)
	}
	return ks
}

func (k KeySpec) equal(o KeySpec) bool {
	return k.IPv6Prefix == o.IPv6Prefix && slices.Equal(k.Parts, o.Parts)
}

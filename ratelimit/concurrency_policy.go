package ratelimit

import (
	"errors"
	"time"
)

// DefaultLease is how long a Redis concurrency slot outlives the last sign
// of life of the gateway holding it; live requests renew theirs, so only a
// crashed gateway's slots ever wait this long.
const DefaultLease = 30 * time.Second

// minLease keeps renewal (every third of the lease) from turning into a
// busy loop against Redis.
const minLease = 300 * time.Millisecond

// ConcurrencyPolicy is one named concurrent-requests limit: at most Max
// requests with the same key are in flight at once; one more is rejected
// until one of them completes.
type ConcurrencyPolicy struct {
	Name string `mapstructure:"name" json:"name"`
	// Max is how many requests per key may be in flight.
	Max int `mapstructure:"max" json:"max"`
	// Key identifies whose requests are counted together, with the same
	// syntax as a rate-limit policy's key. Empty means client_ip.
	Key []string `mapstructure:"key" json:"key"`
	// IPv6Prefix groups IPv6 clients as in Policy; 0 means 64.
	IPv6Prefix int `mapstructure:"ipv6_prefix" json:"ipv6_prefix,omitempty"`
	// Backend is local (count in this process) or redis (count across the
	// fleet, falling back to this process's count while Redis fails).
	Backend string `mapstructure:"backend" json:"backend,omitempty"`
	// Lease bounds how long a slot held in Redis survives the gateway that
	// took it: a crashed gateway's slots come back within one lease. Live
	// requests renew their slots every third of a lease.
	Lease time.Duration `mapstructure:"lease" json:"lease,omitempty"`
}

// Validate checks one concurrency policy; field paths are relative to it.
func (p ConcurrencyPolicy) Validate() error { return errors.Join(p.validate("")...) }

func (p ConcurrencyPolicy) validate(path string) []error {
	var errs []error
	add := fieldAdder(path, &errs)
	validateName(p.Name, add)
	if p.Max <= 0 {
		add("max", "must be a positive number of requests, got %d", p.Max)
	}
	validateKey(p.Key, add)
	if p.IPv6Prefix < 0 || p.IPv6Prefix > 128 {
		add("ipv6_prefix", "must be between 1 and 128 (0 means %d), got %d", DefaultIPv6Prefix, p.IPv6Prefix)
	}
	if err := validateBackend(p.Backend); err != nil {
		add("backend", "%v", err)
	}
	if p.Lease != 0 && p.Lease < minLease {
		add("lease", "must be at least %s (0 means %s), got %s", minLease, DefaultLease, p.Lease)
	}
	return errs
}

// WithDefaults returns p with zero-valued fields filled; p must be valid.
func (p ConcurrencyPolicy) WithDefaults() ConcurrencyPolicy {
	if len(p.Key) == 0 {
		p.Key = []string{"client_ip"}
	}
	if p.IPv6Prefix == 0 {
		p.IPv6Prefix = DefaultIPv6Prefix
	}
	if p.Backend == "" {
		p.Backend = BackendLocal
	}
	if p.Lease == 0 {
		p.Lease = DefaultLease
	}
	return p
}

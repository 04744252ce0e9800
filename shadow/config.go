package shadow

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

// Defaults of the keys a shadow config may omit.
const (
	DefaultMaxConcurrency = 32
	DefaultMaxBody        = 1 << 20
	DefaultTimeout        = time.Second
	// Header marks a request as a shadow copy, so the shadow origin (and
	// its logs) can tell mirrored traffic from real traffic.
	Header = "X-Floodgate-Shadow"
)

// Config is a route's "shadow" key: a fraction of the route's requests is
// copied to Origin, fire-and-forget; the answer is compared with the
// primary's in metrics only and then discarded.
type Config struct {
	// Origin is the shadow origin's name (an origin in the origins section).
	Origin string `mapstructure:"origin" json:"origin"`
	// Fraction of the route's requests mirrored, in (0, 1].
	Fraction float64 `mapstructure:"fraction" json:"fraction"`
	// MaxConcurrency bounds shadow requests in flight for the route; over
	// it a request is not mirrored (counted as skipped_concurrency), never
	// queued.
	MaxConcurrency int `mapstructure:"max_concurrency" json:"max_concurrency"`
	// MaxBody is the largest request body replayed to the shadow. Only
	// bodies the gateway holds whole are replayed (up to 64 KiB, or the
	// whole body when it arrived at once); larger or streamed bodies are
	// not mirrored (counted as skipped_body).
	MaxBody decode.ByteSize `mapstructure:"max_body" json:"max_body"`
	// Timeout bounds a shadow request: connect, time to headers and the
	// discarded body.
	Timeout time.Duration `mapstructure:"timeout" json:"timeout"`
	// Host is the Host header sent to the shadow; empty keeps the one the
	// primary gets.
	Host string `mapstructure:"host" json:"host"`
}

// WithDefaults fills the keys left out.
func (c Config) WithDefaults() Config {
	c.Origin = strings.ToLower(strings.TrimSpace(c.Origin))
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultMaxConcurrency
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every problem, each with its key relative to the
// shadow section ("fraction: ...").
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(c.Origin) == "" {
		add("origin", "required: the origin that receives the copies")
	}
	if math.IsNaN(c.Fraction) || c.Fraction <= 0 || c.Fraction > 1 {
		add("fraction", "must be in (0, 1], got %v", c.Fraction)
	}
	if c.MaxConcurrency < 0 || c.MaxConcurrency > 100000 {
		add("max_concurrency", "must be in 1..100000 (0: the default %d), got %d", DefaultMaxConcurrency, c.MaxConcurrency)
	}
	if c.MaxBody < 0 {
		add("max_body", "must not be negative")
	}
	if c.Timeout < 0 || c.Timeout > time.Minute {
		add("timeout", "must be in 0..1m (0: the default %s), got %s", DefaultTimeout, c.Timeout)
	}
	if strings.ContainsAny(c.Host, " \t\r\n/") {
		add("host", "must be a host[:port], got %q", c.Host)
	}
	return errors.Join(errs...)
}

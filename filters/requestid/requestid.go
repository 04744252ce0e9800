package requestid

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/textproto"
	"strings"

	"github.com/floodgate-dev/floodgate/filters"
)

// FilterName and FilterOrder run "request_id" first among inbound filters
// so every later filter, and every rejection, has an id to log.
const (
	FilterName  = "request_id"
	FilterOrder = filters.OrderRequestID
)

// DefaultHeader is the header carrying the id both ways.
const DefaultHeader = "X-Request-Id"

// DefaultMaxLength bounds an accepted client id. 128 fits UUIDs, ULIDs and
// the usual trace-id formats while keeping log lines and upstream headers
// small.
const DefaultMaxLength = 128

func init() {
	filters.RegisterBuiltin(FilterName, filters.EveryChain(), Defaults, build)
}

// Options configure "request_id".
type Options struct {
	// Header is the header read from the client and set upstream and on
	// the response.
	Header string `mapstructure:"header" json:"header"`
	// TrustIncoming keeps a valid incoming id from the sources TrustFrom
	// names; false always generates one.
	TrustIncoming bool `mapstructure:"trust_incoming" json:"trust_incoming"`
	// TrustFrom is whose ids are kept: "trusted_proxies" (default: the TCP
	// peer is in server.trusted_proxies, the rule X-Forwarded-* follows) or
	// "anyone". An id is a key (request passports are stored by it, logs
	// are searched by it), so an outside client does not choose it unless
	// configured to.
	TrustFrom string `mapstructure:"trust_from" json:"trust_from"`
	// MaxLength is the longest client id kept; longer ones are replaced.
	MaxLength int `mapstructure:"max_length" json:"max_length"`
}

// Values of Options.TrustFrom.
const (
	TrustFromTrustedProxies = "trusted_proxies"
	TrustFromAnyone         = "anyone"
)

// Defaults returns the default options.
func Defaults() Options {
	return Options{Header: DefaultHeader, TrustIncoming: true, TrustFrom: TrustFromTrustedProxies, MaxLength: DefaultMaxLength}
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if o.Header == "" || !validHeaderName(o.Header) {
		errs = append(errs, fmt.Errorf("header: %q is not a valid header name", o.Header))
	}
	if o.TrustFrom != TrustFromTrustedProxies && o.TrustFrom != TrustFromAnyone {
		errs = append(errs, fmt.Errorf("trust_from: must be %s or %s, got %q", TrustFromTrustedProxies, TrustFromAnyone, o.TrustFrom))
	}
	if o.MaxLength < 1 || o.MaxLength > 1024 {
		errs = append(errs, fmt.Errorf("max_length: must be between 1 and 1024, got %d", o.MaxLength))
	}
	return errors.Join(errs...)
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

type filter struct {
	filters.Base
	header    string
	trust     bool
	anyone    bool // ids from any client, not only trusted proxies
	maxLength int
}

func build(_ *filters.Env, o Options) (filters.Filter, error) {
	return &filter{
		Base:      filters.NewBase(FilterName, filters.Inbound, FilterOrder),
		header:    textproto.CanonicalMIMEHeaderKey(o.Header),
		trust:     o.TrustIncoming,
		anyone:    o.TrustFrom == TrustFromAnyone,
		maxLength: o.MaxLength,
	}, nil
}

// Apply picks the id, records it, sets it on the upstream request (a
// client's own value is overwritten when it was invalid, so the origin
// never sees an id the gateway did not log) and asks for it on the
// response, whichever stage produces it.
func (f *filter) Apply(c *filters.Context) error {
	if c.RequestID == "" {
		var in []byte
		if f.trust && (f.anyone || c.PeerTrusted()) {
			in = c.RequestHeader(f.header) // any spelling
		}
		if !Valid(in, f.maxLength) {
			var buf [2 * idBytes]byte
			in = AppendNew(buf[:0])
		}
		c.SetRequestID(in)
	}
	// The origin gets exactly this id: the client's own copies, in any
	// spelling, are replaced rather than forwarded beside it.
	c.SetUpstreamHeader(f.header, c.RequestID)
	c.SetResponseHeader(f.header, c.RequestID)
	return nil
}

// Valid reports whether id is safe to propagate: 1..maxLength bytes of
// letters, digits and - _ . : + = / @. That covers UUIDs, ULIDs, W3C trace
// ids and base64 while excluding anything that could break a header, a log
// line or a shell (spaces, quotes, control bytes, commas).
func Valid(id []byte, maxLength int) bool {
	if len(id) == 0 || len(id) > maxLength {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:+=/@", c) >= 0) {
			return false
		}
	}
	return true
}

// idBytes is the random part of a generated id.
const idBytes = 16

// New returns a fresh id: 16 random bytes in hex. The top-level math/rand/v2
// source is a per-thread ChaCha8 seeded from the OS, so this is lock-free
// and unpredictable enough for correlation ids (they are not secrets).
func New() string {
	var buf [2 * idBytes]byte
	return string(AppendNew(buf[:0]))
}

// AppendNew appends a fresh id (as New) to dst: the filter's way, without
// a string of its own.
func AppendNew(dst []byte) []byte {
	var b [idBytes]byte
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return hex.AppendEncode(dst, b[:])
}

var _ filters.Filter = (*filter)(nil)

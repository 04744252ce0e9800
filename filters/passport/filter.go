package passport

import (
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/trust"
)

// Built-in names and orders (filters/order.go): "passport" right after the
// request id, "passport_header" late among outbound filters.
const (
	FilterName        = "passport"
	HeaderFilterName  = "passport_header"
	FilterOrder       = filters.OrderPassport
	HeaderFilterOrder = filters.OrderPassportHeader
)

// Defaults of the "passport" section.
const (
	DefaultRequestHeader  = "X-Floodgate-Debug"
	DefaultRequestValue   = "passport"
	DefaultResponseHeader = "X-Floodgate-Passport"
	// DefaultMaxHeaderBytes is what "short" means: a passport rendered in
	// at most this many bytes goes in the response header. 4 KiB keeps
	// the whole response head well under the 8 KiB many clients and
	// proxies accept, with room for the origin's own headers; a full
	// chain with one attempt renders in about 1 KiB.
	DefaultMaxHeaderBytes = 4 << 10
	// DefaultKeep is how many passports the admin ring holds.
	DefaultKeep = 1000
)

// RingKey is the long-lived Ring the gateway provides (required).
var RingKey = filters.NewServiceKey[*Ring]("passport.ring")

// Options configure the "passport" built-in (the "passport:" section).
type Options struct {
	// Header is the request header a trusted caller sends with Value to
	// ask for the passport.
	Header string `mapstructure:"header" json:"header"`
	Value  string `mapstructure:"value" json:"value"`
	// ResponseHeader carries the passport back when it is short.
	ResponseHeader string `mapstructure:"response_header" json:"response_header"`
	// MaxHeaderBytes is the longest passport sent as a header; a longer
	// one is replaced by a pointer to the admin endpoint.
	MaxHeaderBytes int `mapstructure:"max_header_bytes" json:"max_header_bytes"`
	// TrustedCIDRs may ask (the client identity derived behind
	// server.trusted_proxies), and so may clients whose verified TLS
	// certificate carries one of TrustedIdentities ("spiffe://...",
	// "dns:NAME", "cn:NAME"). Both empty: nobody; the header is then
	// always stripped.
	TrustedCIDRs      []string `mapstructure:"trusted_cidrs" json:"trusted_cidrs"`
	TrustedIdentities []string `mapstructure:"trusted_identities" json:"trusted_identities"`
	// Keep is how many passports /admin/passports holds.
	Keep int `mapstructure:"keep" json:"keep"`
}

// Defaults returns the default options.
func Defaults() Options {
	return Options{Header: DefaultRequestHeader, Value: DefaultRequestValue, ResponseHeader: DefaultResponseHeader,
		MaxHeaderBytes: DefaultMaxHeaderBytes, Keep: DefaultKeep}
}

// Validate checks the options, naming each bad key.
func (o Options) Validate() error {
	var errs []error
	for key, v := range map[string]string{"header": o.Header, "response_header": o.ResponseHeader} {
		if !validHeaderName(v) {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid header name", key, v))
		}
	}
	if o.Value == "" {
		errs = append(errs, errors.New("value: required"))
	}
	if o.MaxHeaderBytes < 0 || o.MaxHeaderBytes > 6<<10 {
		errs = append(errs, fmt.Errorf("max_header_bytes: must be in 0..6144 (0: never as a header), got %d", o.MaxHeaderBytes))
	}
	if o.Keep < 1 || o.Keep > 100000 {
		errs = append(errs, fmt.Errorf("keep: must be in 1..100000, got %d", o.Keep))
	}
	report := func(key, msg string) { errs = append(errs, fmt.Errorf("%s: %s", key, msg)) }
	trust.Validate("trusted_cidrs", o.TrustedCIDRs, report)
	trust.ValidateIdentities("trusted_identities", o.TrustedIdentities, report)
	return errors.Join(errs...)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func init() {
	filters.RegisterBuiltin(FilterName, filters.EveryChain(), Defaults, build)
	filters.RegisterBuiltin(HeaderFilterName, filters.EveryChain(), func() HeaderOptions { return HeaderOptions{} },
		func(*filters.Env, HeaderOptions) (filters.Filter, error) {
			return headerFilter{Base: filters.NewBase(HeaderFilterName, filters.Outbound, HeaderFilterOrder)}, nil
		})
}

// HeaderOptions: "passport_header" takes its settings from the "passport"
// section, so it has none of its own.
type HeaderOptions struct{}

// filter is the inbound half: it decides whether the request asked for its
// passport, and may.
type filter struct {
	filters.Base
	opts    Options
	trusted trust.Sources
	ring    *Ring
	// store is the completion hook, made once.
	store func(*filters.Context)
}

func build(env *filters.Env, o Options) (filters.Filter, error) {
	ring, ok := RingKey.Lookup(env.Services)
	if !ok || ring == nil {
		return nil, errors.New("passport needs the gateway's passport ring service (a wiring bug)")
	}
	trusted, err := trust.ParseSources(o.TrustedCIDRs, o.TrustedIdentities)
	if err != nil {
		return nil, fmt.Errorf("options.%v", err)
	}
	o.Header = textproto.CanonicalMIMEHeaderKey(o.Header)
	o.ResponseHeader = textproto.CanonicalMIMEHeaderKey(o.ResponseHeader)
	f := &filter{Base: filters.NewBase(FilterName, filters.Inbound, FilterOrder), opts: o, trusted: trusted, ring: ring}
	f.store = func(c *filters.Context) { f.ring.Add(entryOf(c), f.opts.Keep) }
	return f, nil
}

// requestedKey marks a request whose trusted caller asked for its
// passport; it holds the filter that said so, whose options apply.
var requestedKey = filters.NewKey[*filter]("passport.requested")

// ShouldFilter: only requests carrying the debug header, so the common
// case costs one header lookup.
func (f *filter) ShouldFilter(c *filters.Context) bool { return c.RequestHeader(f.opts.Header) != nil }

// Apply honours the header from a trusted caller and, from anyone else,
// ignores it and keeps it from reaching the origin.
func (f *filter) Apply(c *filters.Context) error {
	if !f.trusted.Trusts(c.Identity()) {
		c.DropUpstreamHeader(f.opts.Header)
		c.Log("passport: debug header from an untrusted client ignored and stripped")
		return nil
	}
	if !strings.EqualFold(string(c.RequestHeader(f.opts.Header)), f.opts.Value) {
		return nil
	}
	requestedKey.Set(c, f)
	// Claimed now, so an origin's header of the same name (a gateway
	// behind this one) is not forwarded beside ours; passport_header
	// fills it in.
	c.SetResponseHeader(f.opts.ResponseHeader, "unavailable: the passport_header filter is disabled")
	c.Log("passport: requested by a trusted client")
	c.OnDone(f.store)
	return nil
}

// Describe is the filter's admin view.
func (f *filter) Describe() any {
	return map[string]any{"header": f.opts.Header, "value": f.opts.Value, "response_header": f.opts.ResponseHeader,
		"max_header_bytes": f.opts.MaxHeaderBytes, "keep": f.opts.Keep, "trusted_cidrs": f.opts.TrustedCIDRs,
		"trusted_identities": f.opts.TrustedIdentities}
}

// headerFilter is the outbound half: the passport so far, as a response
// header, for a request that asked for it.
type headerFilter struct{ filters.Base }

func (headerFilter) ShouldFilter(c *filters.Context) bool {
	_, ok := requestedKey.Get(c)
	return ok
}

func (headerFilter) Apply(c *filters.Context) error {
	f, _ := requestedKey.Get(c)
	c.SetResponseHeader(f.opts.ResponseHeader, HeaderValue(c.Passport(), c.RequestID, f.opts.MaxHeaderBytes))
	return nil
}

// HeaderValue is the response header's value: the passport on one line
// when it fits in maxBytes, else where to read it in full.
func HeaderValue(events []filters.Event, requestID string, maxBytes int) string {
	if v := filters.FormatPassport(events); len(v) <= maxBytes {
		return v
	}
	return "too long for a header (over " + strconv.Itoa(maxBytes) + " bytes): GET /admin/passports/" + requestID
}

var (
	_ filters.Filter    = (*filter)(nil)
	_ filters.Describer = (*filter)(nil)
	_ filters.Filter    = headerFilter{}
)

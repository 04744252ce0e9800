package filters

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/routing"
	"github.com/floodgate-dev/floodgate/trust"
)

// Unscored marks a request whose priority has not been scored yet.
const Unscored = -1

// Attempt records one try at an origin instance, so a log line can tell the
// whole story of a request (retries, hedges, which instance failed how).
type Attempt struct {
	Instance string
	Start    time.Time
	Duration time.Duration
	Outcome  string
	Status   int
	Retry    bool
	Hedge    bool
}

// Event is one entry of a request's passport: what happened, and when
// relative to the request's start.
type Event struct {
	At   time.Duration
	What string
	// Filter names the filter of a chain step (the chain records one event
	// per filter it runs, with its decision in What), "" for notes.
	Filter string
	// Took is how long a chain step or an attempt ran.
	Took time.Duration
	// Instance and Outcome are set for an attempt at an origin instance.
	Instance, Outcome string
	// Values are numbers the event carries (a score, a cutoff, tokens
	// left), kept unformatted so recording them costs no allocation; the
	// passport is formatted only when someone reads it.
	Values [maxEventValues]Value
}

// Value is one named number of an Event.
type Value struct {
	Name string
	V    float64
}

const (
	// MaxPassportEvents bounds a passport: a full chain records about a
	// dozen steps, plus notes and attempts.
	MaxPassportEvents = 64
	maxEventValues    = 3
)

// Context is the per-request state every filter sees. It is pooled: the
// gateway resets and reuses it, so filters must not keep a pointer to it (or
// to Request) after the request completes. Fields are exported for filters
// to read and write; the chain owns the unexported ones.
type Context struct {
	// Request is fasthttp's request context. It is valid only until the
	// gateway's handler returns; completion hooks must use the copied fields
	// below instead.
	Request *fasthttp.RequestCtx

	// Route is the route that matched, nil when none did.
	Route *routing.Route
	// Path is the normalized request path: what routes matched on and,
	// after the route's rewrite, what is sent upstream. Set through
	// SetPath it is a view of the Context's own buffer, valid until the
	// Context is released: whatever keeps it longer must copy it.
	Path string
	// UpstreamPath is Path after the route's rewrite.
	UpstreamPath string
	// Method and Host are copied from the request for logs and metrics.
	Method string
	Host   string

	// RequestID is the request's id. Set through SetRequestID, it may
	// live in the Context's own buffer (idBuf): valid until the Context is
	// released, so whatever keeps it longer must copy it (strings.Clone).
	RequestID string
	idBuf     [requestIDBufSize]byte
	// pathBuf holds Path when SetPath made it (see SetPath).
	pathBuf []byte

	// Priority is the request's score, 0 (most critical) .. 100, or
	// Unscored.
	Priority int

	// Category and Status describe how the request ended.
	Category Category
	Status   int
	// Reason says why a request was rejected locally (shed, limited, ...).
	Reason string
	// Err is the error that failed the request, if any, for the log line.
	Err error

	Origin   string
	Instance string
	Attempts []Attempt

	Start         time.Time
	EndpointStart time.Time
	End           time.Time

	// BytesIn and BytesOut count body bytes received from the client and
	// sent to it.
	BytesIn  int64
	BytesOut int64

	// identity is who the request comes from; see ClientIP.
	identity    trust.Identity
	passport    []Event
	bag         []resetter // by Key.id; nil until the key is first set
	respHeaders []responseHeader
	// ownedAbsent, when ownedAbsentKnown, counts the leading respHeaders
	// the response is known not to hold, nor the status header: the
	// endpoint skipped them copying an origin's headers
	// (OwnedHeadersSkipped), so ApplyResponseHeaders adds them without
	// searching for an existing one to replace.
	ownedAbsent      int
	ownedAbsentKnown bool
	upstream         []upstreamHeader
	responded        bool
	doneHooks        []doneHook
	finished         bool
	refs             atomic.Int32
}

// responseHeader is a header asked for with SetResponseHeader, or with
// SetResponseHeaderInt (number, formatted only when applied).
type responseHeader struct {
	name, value string
	number      int64
	isNumber    bool
}

// doneHook is one completion hook: fn, or withArg called with arg.
type doneHook struct {
	fn      func(*Context)
	withArg func(*Context, any)
	arg     any
}

type bagEntry struct {
	key any
	val any
}

// keySlot is one Key's place in a Context's bag. Its value lives in a
// *keyValue[T] that stays with the pooled Context across requests (reset
// clears it), so Key.Set allocates only the first time a Context meets a
// key, never per request.
type resetter interface{ reset() }

type keyValue[T any] struct {
	v   T
	set bool
}

func (kv *keyValue[T]) reset() { *kv = keyValue[T]{} }

var contextPool = sync.Pool{New: func() any { return &Context{Priority: Unscored} }}

// AcquireContext returns a reset Context from the pool, holding one
// reference (the handler's); see Retain and Release.
func AcquireContext() *Context {
	c := contextPool.Get().(*Context)
	c.Start = time.Now()
	c.refs.Store(1)
	return c
}

// Retain adds a reference: whoever still needs c after the handler returns
// (a response body still streaming) retains it and releases it when done.
func (c *Context) Retain() { c.refs.Add(1) }

// Release drops a reference. The last one finishes the request (runs the
// OnDone hooks) and returns c to the pool.
func (c *Context) Release() {
	switch n := c.refs.Add(-1); {
	case n == 0:
		c.finish()
		c.reset()
		contextPool.Put(c)
	case n < 0:
		panic("filters: Context released more often than retained")
	}
}

func (c *Context) reset() {
	c.Request = nil
	c.Route = nil
	c.Path, c.UpstreamPath, c.Method, c.Host = "", "", "", ""
	c.releasePath()
	c.identity = trust.Identity{}
	c.RequestID = ""
	c.poisonRequestID()
	c.Priority = Unscored
	c.Category, c.Status, c.Reason, c.Err = "", 0, "", nil
	c.Origin, c.Instance = "", ""
	c.Attempts = c.Attempts[:0]
	c.Start, c.EndpointStart, c.End = time.Time{}, time.Time{}, time.Time{}
	c.BytesIn, c.BytesOut = 0, 0
	c.passport = c.passport[:0]
	for _, kv := range c.bag {
		if kv != nil {
			kv.reset()
		}
	}
	c.respHeaders = c.respHeaders[:0]
	c.ownedAbsent, c.ownedAbsentKnown = 0, false
	c.upstream = c.upstream[:0]
	c.responded, c.finished = false, false
	clear(c.doneHooks)
	c.doneHooks = c.doneHooks[:0]
}

// Responded reports whether a filter or the endpoint has produced the
// response; inbound filters after that point are skipped.
func (c *Context) Responded() bool { return c.responded }

// Respond answers the request locally with a short plain-text reason. The
// remaining inbound filters and the endpoint are skipped; outbound filters
// still run.
func (c *Context) Respond(status int, category Category, reason string) {
	resp := &c.Request.Response
	c.ownedAbsentKnown = false
	if c.responded {
		// Replacing an answer (an outbound filter failed after the
		// endpoint): its headers describe a body that is no longer sent.
		resp.Header.Reset()
	}
	resp.ResetBody()
	resp.SetStatusCode(status)
	if reason != "" {
		// Only a body gets a Content-Type: an empty answer (OPTIONS *)
		// carries none rather than an invented one.
		resp.Header.SetContentType("text/plain; charset=utf-8")
		resp.SetBodyString(reason + "\n")
	}
	c.Status = status
	c.Category = category
	c.Reason = reason
	c.responded = true
}

// MarkResponded records that the endpoint produced the response itself.
func (c *Context) MarkResponded(status int, category Category) {
	c.Status = status
	c.Category = category
	c.responded = true
}

// Log appends an event to the request's passport (bounded; the oldest
// events are kept because they explain how the request started failing).
func (c *Context) Log(what string) {
	if len(c.passport) < MaxPassportEvents {
		c.passport = append(c.passport, Event{At: time.Since(c.Start), What: what})
	}
}

// LogValues is Log with up to three named numbers (extra ones are
// dropped), e.g. LogValues("shed_global: admitted", Value{"score", 50},
// Value{"cutoff", 100}). Pass constant strings: the point is that
// recording allocates nothing.
func (c *Context) LogValues(what string, values ...Value) {
	if len(c.passport) >= MaxPassportEvents {
		return
	}
	e := Event{At: time.Since(c.Start), What: what}
	copy(e.Values[:], values)
	c.passport = append(c.passport, e)
}

// LogAttempt records an attempt at an origin instance in the passport.
func (c *Context) LogAttempt(a Attempt) {
	if len(c.passport) >= MaxPassportEvents {
		return
	}
	what := "attempt"
	switch {
	case a.Hedge:
		what = "attempt (hedge)"
	case a.Retry:
		what = "attempt (retry)"
	}
	e := Event{At: a.Start.Sub(c.Start), What: what, Instance: a.Instance, Outcome: a.Outcome, Took: a.Duration}
	if a.Status != 0 {
		e.Values[0] = Value{Name: "status", V: float64(a.Status)}
	}
	c.passport = append(c.passport, e)
}

// logStep records a chain step: the filter, its decision and how long it
// ran.
func (c *Context) logStep(filter, decision string, at, took time.Duration) {
	if len(c.passport) < MaxPassportEvents {
		c.passport = append(c.passport, Event{At: at, What: decision, Filter: filter, Took: took})
	}
}

// Passport returns the request's events so far.
func (c *Context) Passport() []Event { return c.passport }

// SetResponseHeader asks for a header on the response whatever produces it
// (endpoint or local rejection). Inbound filters use it because the
// endpoint owns the response headers while it runs (it copies the origin's).
func (c *Context) SetResponseHeader(name, value string) {
	c.setResponseHeader(responseHeader{name: name, value: value})
}

// SetResponseHeaderInt is SetResponseHeader for a decimal number; it is
// formatted straight into the response, without a string per request.
func (c *Context) SetResponseHeaderInt(name string, v int64) {
	c.setResponseHeader(responseHeader{name: name, number: v, isNumber: true})
}

func (c *Context) setResponseHeader(rh responseHeader) {
	for i := range c.respHeaders {
		if c.respHeaders[i].name == rh.name {
			c.respHeaders[i] = rh
			return
		}
	}
	c.respHeaders = append(c.respHeaders, rh)
}

// ApplyResponseHeaders writes the headers asked for with SetResponseHeader
// and the status category; the gateway calls it once the chain has run.
func (c *Context) ApplyResponseHeaders() {
	h := &c.Request.Response.Header
	for i, rh := range c.respHeaders {
		absent := c.ownedAbsentKnown && i < c.ownedAbsent
		if rh.isNumber {
			var buf [20]byte
			v := strconv.AppendInt(buf[:0], rh.number, 10)
			if absent {
				h.AddBytesV(rh.name, v)
			} else {
				h.SetBytesV(rh.name, v)
			}
			continue
		}
		if absent {
			h.Add(rh.name, rh.value)
		} else {
			h.Set(rh.name, rh.value)
		}
	}
	if c.Category != "" {
		if c.ownedAbsentKnown {
			h.Add(StatusHeader, string(c.Category))
		} else {
			h.Set(StatusHeader, string(c.Category))
		}
	}
}

// OwnedHeadersSkipped tells the Context that the response holds none of
// the headers the gateway owns so far (OwnsResponseHeader): an endpoint
// calls it once it has copied an origin's headers without them. Setting
// them then needs no search for one to replace; a later Respond forgets
// it.
func (c *Context) OwnedHeadersSkipped() {
	c.ownedAbsent, c.ownedAbsentKnown = len(c.respHeaders), true
}

// OnDone registers fn to run once the response is complete (after the body
// has been streamed, possibly after the handler returned). Hooks must not
// touch c.Request: it is nil by then.
func (c *Context) OnDone(fn func(*Context)) { c.doneHooks = append(c.doneHooks, doneHook{fn: fn}) }

// OnDoneWith is OnDone for a hook that needs a value: fn (a function, not
// a closure) is called with arg. A filter on the hot path uses it so that
// registering its hook allocates nothing, where a closure capturing the
// value would be allocated per request.
func (c *Context) OnDoneWith(fn func(c *Context, arg any), arg any) {
	c.doneHooks = append(c.doneHooks, doneHook{withArg: fn, arg: arg})
}

// finish runs the completion hooks once.
func (c *Context) finish() {
	if c.finished {
		return
	}
	c.finished = true
	if c.End.IsZero() {
		c.End = time.Now()
	}
	for _, h := range c.doneHooks {
		if h.fn != nil {
			h.fn(c)
		} else {
			h.withArg(c, h.arg)
		}
	}
}

// Key is a typed slot in a Context's small value bag, for custom filters
// to pass data along the chain without string keys or type assertions.
// Each key has its own index in every Context's bag, so a lookup is one
// slice access (the bag was searched by comparing interfaces, several
// times per request on the hot path).
type Key[T any] struct {
	name string
	id   int
}

// keyCount numbers the keys made so far: the next key's index.
var keyCount atomic.Int64

// NewKey creates a key; create keys once (package-level) and reuse them:
// each key takes a slot in the bag of every Context that sets it.
func NewKey[T any](name string) *Key[T] {
	return &Key[T]{name: name, id: int(keyCount.Add(1) - 1)}
}

// Name returns the key's name.
func (k *Key[T]) Name() string { return k.name }

// Set stores v under k in c.
func (k *Key[T]) Set(c *Context, v T) {
	kv := k.slot(c)
	if kv == nil {
		kv = new(keyValue[T])
		if k.id >= len(c.bag) {
			c.bag = append(c.bag, make([]resetter, k.id+1-len(c.bag))...)
		}
		c.bag[k.id] = kv
	}
	kv.v, kv.set = v, true
}

// Get returns the value stored under k in c.
func (k *Key[T]) Get(c *Context) (T, bool) {
	if kv := k.slot(c); kv != nil && kv.set {
		return kv.v, true
	}
	var zero T
	return zero, false
}

// slot is k's value holder in c, nil until k was first set on c.
func (k *Key[T]) slot(c *Context) *keyValue[T] {
	if k.id < len(c.bag) {
		if kv := c.bag[k.id]; kv != nil {
			return kv.(*keyValue[T])
		}
	}
	return nil
}

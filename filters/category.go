package filters

import "sync"

// Category classifies how a request ended, independently of its HTTP status.
// It is what an SRE filters on: a 502 can be a connect error, a reset or a
// pass-through of an origin's 502, and each calls for a different response.
// Every category belongs to a Group, which answers "whose fault was it".
type Category string

// Group says whose doing a request's ending was.
type Group uint8

// The groups, after Zuul's status categories.
const (
	// GroupLocal: the gateway's own decision or failure (shed, rate
	// limited, a filter failed, our connection pool is full). The default
	// of categories registered without a group.
	GroupLocal Group = iota
	// GroupSuccess: the request was served.
	GroupSuccess
	// GroupClient: the client's doing (bad request, too large, went away,
	// asked for what no route serves).
	GroupClient
	// GroupOrigin: the origin's doing (could not connect, timed out, reset,
	// answered 5xx, has no healthy instance).
	GroupOrigin
)

var groupNames = [...]string{GroupLocal: "local", GroupSuccess: "success", GroupClient: "client", GroupOrigin: "origin"}

func (g Group) String() string {
	if int(g) < len(groupNames) {
		return groupNames[g]
	}
	return "unknown"
}

// The categories every part of the gateway reports. Filters added by
// operators may define their own with NewCategory; keep them snake_case
// and low-cardinality because they become metric labels.
var (
	CategorySuccess         = NewCategory("success", GroupSuccess)
	CategoryNoRoute         = NewCategory("no_route", GroupClient)
	CategoryClientError     = NewCategory("client_error", GroupClient)
	CategoryRequestTooLarge = NewCategory("request_too_large", GroupClient)
	CategoryHeaderTooLarge  = NewCategory("header_too_large", GroupClient)
	CategoryClientTimeout   = NewCategory("client_timeout", GroupClient)
	CategoryClientClosed    = NewCategory("client_closed", GroupClient)
	// CategoryUpgradeRefused: the client asked to switch to a protocol
	// the gateway does not carry (h2c, anything but WebSocket) or to
	// WebSocket on a route that has it off.
	CategoryUpgradeRefused     = NewCategory("upgrade_refused", GroupClient)
	CategoryOriginConnectError = NewCategory("origin_connect_error", GroupOrigin)
	CategoryOriginTimeout      = NewCategory("origin_timeout", GroupOrigin)
	CategoryOriginReset        = NewCategory("origin_reset", GroupOrigin)
	CategoryOriginBadResponse  = NewCategory("origin_bad_response", GroupOrigin)
	CategoryOrigin5xx          = NewCategory("origin_5xx", GroupOrigin)
	CategoryNoHealthyInstances = NewCategory("no_healthy_instances", GroupOrigin)
	// CategoryOriginConcurrency is our own cap on connections to an origin:
	// local, not the origin's fault.
	CategoryOriginConcurrency = NewCategory("origin_concurrency", GroupLocal)
	CategoryFilterError       = NewCategory("filter_error", GroupLocal)
	CategoryFilterTimeout     = NewCategory("filter_timeout", GroupLocal)
	CategoryFilterOverloaded  = NewCategory("filter_overloaded", GroupLocal)
	CategoryShedGlobal        = NewCategory("local_shed_global", GroupLocal)
	CategoryShedOrigin        = NewCategory("local_shed_origin", GroupLocal)
	CategoryShedChaos         = NewCategory("local_shed_chaos", GroupLocal)
	CategoryRateLimited       = NewCategory("rate_limited", GroupLocal)
	CategoryInternalError     = NewCategory("internal_error", GroupLocal)
)

// categoryGroups is the registry of every category's group, filled by
// NewCategory at init time.
var categoryGroups sync.Map // Category -> Group

// NewCategory declares a category and its group; call it from a package
// variable's initializer. Declaring a name twice with different groups
// panics: it is a programming error caught at start-up.
func NewCategory(name string, g Group) Category {
	c := Category(name)
	if prev, loaded := categoryGroups.LoadOrStore(c, g); loaded && prev.(Group) != g {
		panic("filters: category " + name + " declared in two groups")
	}
	return c
}

// Group is the category's group: the one place that answers "whose fault".
// An undeclared category is local.
func (c Category) Group() Group {
	if g, ok := categoryGroups.Load(c); ok {
		return g.(Group)
	}
	return GroupLocal
}

// OriginFault reports whether the origin caused the ending: what origin
// health signals (error rate, breaker-like shedding) should count.
func (c Category) OriginFault() bool { return c.Group() == GroupOrigin }

// StatusHeader is the response header that carries the category.
const StatusHeader = "X-Floodgate-Status"

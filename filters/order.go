package filters

// The built-in filters' orders, in one table so "what runs when" is read
// in one place. Lower runs first within a stage; custom filters pick any
// order between these (the gaps are deliberate) and ties break by name.
const (
	// OrderRequestID: first, so every later filter and every rejection has
	// an id to log.
	OrderRequestID = 10
	// OrderPassport: right after the id, so a trusted caller's passport
	// request is known (and an untrusted one stripped) before anything can
	// answer the request.
	OrderPassport = 12
	// OrderShedGlobal: right after the id, so an overloaded gateway spends
	// as little as possible on a request it refuses.
	OrderShedGlobal = 20
	// OrderChaosGlobal: after global scoring and shedding (the score
	// picks which requests an experiment may touch; a request the gateway
	// sheds anyway is not counted in an experiment).
	OrderChaosGlobal = 25
	// OrderRateLimit: after global shedding, so a request the gateway
	// sheds anyway does not spend a client's tokens.
	OrderRateLimit = 200
	// OrderConcurrencyLimit: after rate limiting (cheap token check first),
	// before origin shedding.
	OrderConcurrencyLimit = 250
	// OrderChaosOrigin: per-origin experiments, once the request is
	// allowed everywhere else but before it takes a slot at its origin.
	OrderChaosOrigin = 290
	// OrderShedOrigin: last inbound step before the endpoint, once the
	// request is known to be allowed everywhere else.
	OrderShedOrigin = 300
	// OrderShedOriginRelease: first outbound; the origin's response
	// headers are in, so the request's slot in the origin's limiter is
	// freed while the body may still stream for long.
	OrderShedOriginRelease = 1
	// OrderMetrics: late outbound; it records on completion, so its place
	// matters only for the passport.
	OrderMetrics = 900
	// OrderPassportHeader: after metrics, before the access log: the
	// passport returned to a trusted caller holds every step up to here.
	OrderPassportHeader = 940
	// OrderAccessLog: last outbound; it writes on completion when the
	// final status is known.
	OrderAccessLog = 950
)

// OrderEntry is one row of the built-in order table.
type OrderEntry struct {
	Name  string
	Stage Stage
	Order int
}

// BuiltinOrders is the order table: every built-in filter with its stage
// and order, in run order. docs/ARCHITECTURE.md prints the same table and
// a test keeps the two equal.
func BuiltinOrders() []OrderEntry {
	return []OrderEntry{
		{"request_id", Inbound, OrderRequestID},
		{"passport", Inbound, OrderPassport},
		{"shed_global", Inbound, OrderShedGlobal},
		{"chaos_global", Inbound, OrderChaosGlobal},
		{"rate_limit", Inbound, OrderRateLimit},
		{"concurrency_limit", Inbound, OrderConcurrencyLimit},
		{"chaos_origin", Inbound, OrderChaosOrigin},
		{"shed_origin", Inbound, OrderShedOrigin},
		{"shed_origin_release", Outbound, OrderShedOriginRelease},
		{"metrics", Outbound, OrderMetrics},
		{"passport_header", Outbound, OrderPassportHeader},
		{"access_log", Outbound, OrderAccessLog},
	}
}

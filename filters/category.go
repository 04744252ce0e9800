package filters

// Category classifies how a request ended, independently of its HTTP status.
// It is what an SRE filters on: a 502 can be a connect error, a reset or a
// pass-through of an origin's 502, and each calls for a different response.
type Category string

// The categories every part of the gateway reports. Filters added by
// operators may define their own; keep them snake_case and low-cardinality
// because they become metric labels.
const (
	CategorySuccess            Category = "success"
	CategoryNoRoute            Category = "no_route"
	CategoryClientError        Category = "client_error"
	CategoryRequestTooLarge    Category = "request_too_large"
	CategoryHeaderTooLarge     Category = "header_too_large"
	CategoryClientTimeout      Category = "client_timeout"
	CategoryOriginConnectError Category = "origin_connect_error"
	CategoryOriginTimeout      Category = "origin_timeout"
	CategoryOriginReset        Category = "origin_reset"
	CategoryOriginBadResponse  Category = "origin_bad_response"
	CategoryClientClosed       Category = "client_closed"
	CategoryOrigin5xx          Category = "origin_5xx"
	CategoryOrigin4xx          Category = "origin_4xx"
	CategoryNoHealthyInstances Category = "no_healthy_instances"
	CategoryOriginConcurrency  Category = "origin_concurrency"
	CategoryFilterError        Category = "filter_error"
	CategoryFilterTimeout      Category = "filter_timeout"
	CategoryFilterOverloaded   Category = "filter_overloaded"
	CategoryShedGlobal         Category = "local_shed_global"
	CategoryShedOrigin         Category = "local_shed_origin"
	CategoryShedChaos          Category = "local_shed_chaos"
	CategoryRateLimited        Category = "rate_limited"
	CategoryInternalError      Category = "internal_error"
)

// StatusHeader is the response header that carries the category.
const StatusHeader = "X-Floodgate-Status"

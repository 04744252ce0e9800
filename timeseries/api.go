package timeseries

import (
	"encoding/json"
	"time"
)

// Operation names, one POST endpoint each under the route prefix.
const (
	OpWriteSync = "WriteEventRecordsSync"
	OpWrite     = "WriteEventRecords"
	OpRead      = "ReadEventRecords"
	OpSearch    = "SearchEventRecords"
	OpAggregate = "AggregateEventRecords"
)

// Operations lists every operation name.
func Operations() []string {
	return []string{OpWriteSync, OpWrite, OpRead, OpSearch, OpAggregate}
}

// EventItem is a key/value pair; both are base64 (standard encoding) in JSON.
type EventItem struct {
	EventItemKey   string `json:"eventItemKey"`
	EventItemValue string `json:"eventItemValue"`
}

// EventRecord is one event as it travels in JSON. EventTime is RFC 3339 with at most
// millisecond precision.
type EventRecord struct {
	TimeSeriesID string      `json:"timeSeriesId"`
	EventTime    string      `json:"eventTime"`
	EventID      string      `json:"eventId"`
	EventItems   []EventItem `json:"eventItems"`
}

// WriteRequest is the body of WriteEventRecordsSync and WriteEventRecords.
type WriteRequest struct {
	Namespace string        `json:"namespace"`
	Events    []EventRecord `json:"events"`
}

// WriteResponse answers a write: Written for sync writes (durable), Accepted for async ones
// (queued).
type WriteResponse struct {
	Written  int `json:"written,omitempty"`
	Accepted int `json:"accepted,omitempty"`
}

// TimeInterval is the half-open interval [Start, End), both RFC 3339.
type TimeInterval struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// EventFilter keeps events having an item with this key and value (base64).
type EventFilter struct {
	MatchEventItemKey   string `json:"matchEventItemKey"`
	MatchEventItemValue string `json:"matchEventItemValue"`
}

// ReadRequest is the body of ReadEventRecords. PageSize defaults to 100; TotalRecordLimit 0
// means no limit across pages.
type ReadRequest struct {
	Namespace        string        `json:"namespace"`
	TimeSeriesID     string        `json:"timeSeriesId"`
	TimeInterval     TimeInterval  `json:"timeInterval"`
	EventFilters     []EventFilter `json:"eventFilters,omitempty"`
	PageSize         int           `json:"pageSize,omitempty"`
	TotalRecordLimit int           `json:"totalRecordLimit,omitempty"`
	PageToken        string        `json:"pageToken,omitempty"`
}

// EventsResponse answers reads and searches: events newest first. NextPageToken is set when
// more results may follow; Partial when the read SLO cut the page short (follow the token to
// continue without gaps).
type EventsResponse struct {
	Events        []EventRecord `json:"events"`
	NextPageToken string        `json:"nextPageToken,omitempty"`
	Partial       bool          `json:"partial,omitempty"`
}

// SearchQuery is a boolean tree: exactly one of And, Or, Equals, Range is set.
type SearchQuery struct {
	And    []SearchQuery `json:"and,omitempty"`
	Or     []SearchQuery `json:"or,omitempty"`
	Equals *EqualsQuery  `json:"equals,omitempty"`
	Range  *RangeQuery   `json:"range,omitempty"`
}

// EqualsQuery matches events whose indexed field EventItemKey equals EventItemValue (both
// base64, like event items).
type EqualsQuery struct {
	EventItemKey   string `json:"eventItemKey"`
	EventItemValue string `json:"eventItemValue"`
}

// RangeQuery matches INTEGER fields; at least one bound is required.
type RangeQuery struct {
	EventItemKey string `json:"eventItemKey"`
	Gt           *int64 `json:"gt,omitempty"`
	Gte          *int64 `json:"gte,omitempty"`
	Lt           *int64 `json:"lt,omitempty"`
	Lte          *int64 `json:"lte,omitempty"`
}

// SearchRequest is the body of SearchEventRecords. TotalRecordLimit 0 means no limit across
// pages.
type SearchRequest struct {
	Namespace        string       `json:"namespace"`
	TimeInterval     TimeInterval `json:"timeInterval"`
	SearchQuery      *SearchQuery `json:"searchQuery"`
	PageSize         int          `json:"pageSize,omitempty"`
	TotalRecordLimit int          `json:"totalRecordLimit,omitempty"`
	PageToken        string       `json:"pageToken,omitempty"`
}

// AggregateRequest is the body of AggregateEventRecords.
type AggregateRequest struct {
	Namespace        string           `json:"namespace"`
	TimeInterval     TimeInterval     `json:"timeInterval"`
	SearchQuery      *SearchQuery     `json:"searchQuery"`
	AggregationQuery AggregationQuery `json:"aggregationQuery"`
	PageToken        string           `json:"pageToken,omitempty"`
}

// AggregationQuery holds the aggregation to run; only Distinct exists today.
type AggregationQuery struct {
	Distinct *DistinctQuery `json:"distinct"`
}

// DistinctQuery counts the distinct values of one item key (base64) among matching events.
type DistinctQuery struct {
	EventItemKey string `json:"eventItemKey"`
	PageSize     int    `json:"pageSize,omitempty"`
}

// DistinctValue is one distinct value (base64) and how many matching events carry it.
type DistinctValue struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// AggregateResponse lists distinct values by count descending, then value ascending.
type AggregateResponse struct {
	Distinct      []DistinctValue `json:"distinct"`
	NextPageToken string          `json:"nextPageToken,omitempty"`
	Partial       bool            `json:"partial,omitempty"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error      string `json:"error"`
	Field      string `json:"field,omitempty"`
	EventIndex *int   `json:"eventIndex,omitempty"`
	// Reason is a stable machine-readable code (e.g. "queue_full", "validation").
	Reason string `json:"reason,omitempty"`
}

// Response is a transport-neutral answer. RetryAfter is non-zero when the caller should set a
// Retry-After header (queue full, closing).
type Response struct {
	Status     int
	Body       []byte
	RetryAfter time.Duration
}

// apiError is an error that knows its HTTP status and the offending field.
type apiError struct {
	status     int
	msg        string
	field      string
	eventIndex int // -1 when not about one event
	reason     string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.msg }

func badField(field, msg string) *apiError {
	return &apiError{status: 400, msg: field + ": " + msg, field: field, eventIndex: -1, reason: "validation"}
}

func badEvent(i int, field, msg string) *apiError {
	e := badField(field, msg)
	e.eventIndex = i
	return e
}

func (e *apiError) response() Response {
	b := ErrorBody{Error: e.msg, Field: e.field, Reason: e.reason}
	if e.eventIndex >= 0 {
		i := e.eventIndex
		b.EventIndex = &i
	}
	body, _ := json.Marshal(b)
	return Response{Status: e.status, Body: body, RetryAfter: e.retryAfter}
}

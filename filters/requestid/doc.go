// Package requestid owns the "request_id" filter: every request gets an
// id, the client's X-Request-Id when it is present and safe to propagate,
// otherwise a fresh random one. The id is stored in the Context for logs,
// forwarded to the origin and returned to the client, so one string ties
// a client report, the access log and the origin's logs together.
package requestid

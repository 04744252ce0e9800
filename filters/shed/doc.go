// Package shed adapts the loadshed package to the filter chain: one filter
// scores every request's priority and applies the global throttler early in
// the inbound chain; another applies the route's origin throttler once the
// origin is known, so one sick origin sheds only its own traffic. Both
// answer shed requests themselves (503, Retry-After, X-Floodgate-Shed)
// without touching an origin or reading the body.
package shed

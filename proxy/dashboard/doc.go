// Package dashboard owns the operator's live view of the gateway: a small
// page served by the admin listener at /dashboard (HTML, CSS and plain-SVG
// JavaScript embedded in the binary, no build step) and the JSON document
// it polls, assembled from the running components' own accessors: the
// shedder's scopes with their curve steepness, the origins with their
// instances, request counts by status category and the rate-limit
// policies.
package dashboard

// Package decode is the config toolkit every section of Floodgate's YAML is
// read with: a generic tree (as YAML parses it) decoded over a section's
// typed defaults, with human units ("250ms", "4MiB"; a duration without a
// unit is rejected), unknown keys rejected, FLOODGATE_* environment
// overrides applied to the tree, and one error list whose every entry
// names its key path.
//
// It is a leaf: it imports no other Floodgate package, so domain packages
// (origins, loadshed, ratelimit, timeseries) and filters decode their own
// options with it without depending on the gateway's config package.
package decode

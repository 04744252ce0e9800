// Package chaos owns the chaos experiment filters: "chaos_global" and
// "chaos_origin" place each request in its experiment group, control group
// or neither (loadshed owns membership, durations and the actions' config),
// act on the experiment group (shed, fail, delay), and report every counted
// request with its group and outcome, so an experiment's effect is
// measured against its untouched control group.
package chaos

// Package racebuild owns one fact: whether this binary was built with the
// race detector. Pooled objects use it to poison what they release (or to
// panic at a misuse) in the build CI runs, where a use after release then
// fails the test that made it instead of silently reading another
// request's state.
package racebuild

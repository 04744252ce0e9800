//go:build race

package origins

// raceEnabled: a race-detector build, where a misused Ticket panics so the
// test that misused it fails with the stack that did.
const raceEnabled = true

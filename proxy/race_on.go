//go:build race

package proxy

// raceEnabled: a race-detector build, where pooled objects are poisoned
// rather than reused so a use after release fails where it happens.
const raceEnabled = true

//go:build !race

package origins

// raceEnabled: a race-detector build (see race_on.go).
const raceEnabled = false

//go:build !race

package proxy

// raceEnabled: a race-detector build (see race_on.go).
const raceEnabled = false

//go:build race

package main

// raceDetector reports a -race build, whose instrumentation allocates more.
const raceDetector = true

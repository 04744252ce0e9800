// Package leaktest owns the goroutine-leak check every test package runs,
// with the one list of background goroutines that are not leaks.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// Housekeeping are fasthttp's timer-driven background goroutines: the
// server worker pool's idle-worker sweeper and the client's idle-connection
// cleaner, which sleep for their interval and exit on their own once their
// server is stopped or their pool is empty (mCleaner is the multi-host
// client's), and the process-wide Date
// header updater, started once and shared by every server. None grows with
// use, so none is a leak; all else is checked.
var Housekeeping = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
}

// VerifyTestMain runs the package's tests, then fails if goroutines leaked.
func VerifyTestMain(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, append(append([]goleak.Option(nil), Housekeeping...), extra...)...)
}

// Find reports leaked goroutines, for TestMains that need cleanup first.
func Find(extra ...goleak.Option) error {
	return goleak.Find(append(append([]goleak.Option(nil), Housekeeping...), extra...)...)
}

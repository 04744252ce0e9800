// Package leaktest owns the goroutine-leak check every test package runs,
// with the one list of background goroutines that are not leaks.
package leaktest

import (
	"fmt"
	"os"
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

// RunTestMain runs the package's tests, then fails the package if check
// reports a problem (an invariant the tests must leave intact, such as
// origins' count of misused attempt tickets) or, after that, if a
// goroutine leaked. It does not return.
func RunTestMain(m *testing.M, check func() error, extra ...goleak.Option) {
	code := m.Run()
	if code == 0 && check != nil {
		if err := check(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		if err := Find(extra...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

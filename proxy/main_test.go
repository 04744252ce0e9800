package proxy

import (
	"fmt"
	"os"
	"testing"

	"github.com/floodgate-dev/floodgate/internal/leaktest"
	"github.com/floodgate-dev/floodgate/origins"
)

// TestMain fails the package if a goroutine leaked, or if an attempt was
// reported through a Ticket after its final report (a holder's bug that
// origins drops and counts; the race build panics at it).
func TestMain(m *testing.M) {
	code := m.Run()
	if n := origins.TicketMisuses(); code == 0 && n != 0 {
		fmt.Fprintf(os.Stderr, "attempt tickets misused %d times\n", n)
		code = 1
	}
	if code == 0 {
		if err := leaktest.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

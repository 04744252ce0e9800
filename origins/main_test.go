package origins

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Every report through a stale Ticket is a holder's bug; only the
	// ones ticket_test.go commits on purpose may have happened.
	if n := TicketMisuses(); code == 0 && n != intentionalMisuses {
		fmt.Fprintf(os.Stderr, "attempt tickets misused %d times (%d on purpose)\n", n, intentionalMisuses)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(
			// Process-lifetime goroutines fasthttp starts once, on first use: the default
			// dialer's DNS cache cleaner and the server Date header ticker. They are not
			// ours to stop and do not grow.
			goleak.IgnoreTopFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
			goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

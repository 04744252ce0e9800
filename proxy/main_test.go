package proxy

import (
	"testing"

	"github.com/floodgate-dev/floodgate/internal/leaktest"
	"github.com/floodgate-dev/floodgate/origins"
)

// TestMain fails the package if a goroutine leaked, or if an attempt was
// reported through a Ticket after its final report (a holder's bug that
// origins drops and counts; the race build panics at it).
func TestMain(m *testing.M) { leaktest.RunTestMain(m, origins.CheckNoTicketMisuse) }

package ratelimit

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs each failed dial; the fault tests cause many.
	RouteClientLogs(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

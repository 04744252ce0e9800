package ratelimit

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteClientLogs sends go-redis's own log lines (one per failed dial, in
// its own format on stderr by default) to logger at debug level. The
// backend already logs failures, rate-limited and with context, so these
// are detail for debugging. go-redis's logger is process-wide: the gateway
// calls this once at start-up.
func RouteClientLogs(logger *slog.Logger) {
	redis.SetLogger(clientLogs{logger})
}

type clientLogs struct{ l *slog.Logger }

func (c clientLogs) Printf(ctx context.Context, format string, v ...any) {
	c.l.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

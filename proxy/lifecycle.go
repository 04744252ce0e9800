package proxy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/valyala/fasthttp"
)

// BeginShutdown marks the server as shutting down without closing
// anything: /readyz answers 503 from now on and every response asks its
// client to close the connection, so keep-alive clients reconnect through
// a load balancer that has stopped sending here. The listener keeps
// accepting until Shutdown.
func (s *Server) BeginShutdown() { s.shuttingDown.Store(true) }

// ShuttingDown reports whether BeginShutdown was called.
func (s *Server) ShuttingDown() bool { return s.shuttingDown.Load() }

func (s *Server) closeIfShuttingDown(ctx *fasthttp.RequestCtx) {
	if s.shuttingDown.Load() {
		ctx.SetConnectionClose()
	}
}

// ErrDrainTimeout reports that in-flight requests were still running when
// the drain timeout ended; their connections were closed.
var ErrDrainTimeout = errors.New("drain timeout reached")

// GracefulStop runs the shutdown sequence: mark the server not ready, keep
// serving for lameDuck (ended early by ctx, e.g. a second signal), then
// stop accepting and wait up to drainTimeout for in-flight requests,
// including streaming responses, to finish. It returns ErrDrainTimeout if
// requests were cut.
func (s *Server) GracefulStop(ctx context.Context, lameDuck, drainTimeout time.Duration, logger *slog.Logger) error {
	s.BeginShutdown()
	if lameDuck > 0 {
		logger.Info("shutting down: lame duck, still accepting while load balancers notice /readyz", "lame_duck", lameDuck.String())
		t := time.NewTimer(lameDuck)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			logger.Warn("lame duck cut short")
		}
	}
	logger.Info("shutting down: draining in-flight requests", "drain_timeout", drainTimeout.String(), "in_flight", s.InFlight())
	drainCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err := s.Shutdown(drainCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		inFlight := s.InFlight()
		closed := 0
		if cl := s.ln.Load(); cl != nil {
			closed = cl.closeAll()
		}
		logger.Warn("drain timeout reached; closed remaining connections", "in_flight", inFlight, "connections", closed)
		return ErrDrainTimeout
	}
	return err
}

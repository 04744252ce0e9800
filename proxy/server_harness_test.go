package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/config"
)

// testServer is a Server on a loopback listener, built from YAML the way
// the gateway builds it (no origins: static routes only).
type testServer struct {
	*Server
	addr string
	// served is closed when Serve has returned.
	served chan struct{}
}

func startTestServer(t *testing.T, yaml string, logger *slog.Logger) *testServer {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := NewBuilder(logger)
	snap, err := b.Build(cfg)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	srv := NewServer(b, snap, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv, addr: ln.Addr().String(), served: make(chan struct{})}
	go func() {
		defer close(ts.served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if cl := srv.ln.Load(); cl != nil {
			cl.closeAll()
		}
		<-ts.served
		b.Close()
	})
	return ts
}

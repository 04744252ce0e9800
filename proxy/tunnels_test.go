package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A tunnel closed by the drain before fasthttp handed it the client
// connection leaves the set at once (wait returns), closes its origin
// connection, and only closes the client connection when its hijack
// handler runs late.
func TestTunnelSetClosesPendingTunnels(t *testing.T) {
	set := newTunnelSet()
	originSide, gatewaySide := net.Pipe()
	defer originSide.Close()
	tn := &tunnel{set: set, route: "r", limits: tunnelLimits{idle: time.Minute}, metrics: noTunnelMetrics{}, logger: discardLogger(), origin: gatewaySide}
	if !set.add(tn) {
		t.Fatal("add refused on an open set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := set.wait(ctx); err == nil {
		t.Fatal("wait returned with a tunnel registered")
	}
	if n := set.closeAll("drain"); n != 1 {
		t.Fatalf("closeAll closed %d, want 1", n)
	}
	if err := set.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := originSide.Read(make([]byte, 1)); err == nil {
		t.Error("the origin connection is still open")
	}
	clientSide, client := net.Pipe()
	defer clientSide.Close()
	tn.run(client, []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"), nil, false) // returns at once, writes nothing
	if n, err := clientSide.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Errorf("the late client connection got %d bytes, %v; want it closed with nothing written", n, err)
	}
	if set.Running() != 0 || set.Len() != 0 {
		t.Errorf("running %d, registered %d after a late run", set.Running(), set.Len())
	}
	if set.add(&tunnel{set: set}) {
		t.Error("a closed set accepted a new tunnel")
	}
}

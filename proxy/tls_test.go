package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/internal/testpki"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// Over server.max_connections a TLS listener closes the connection without
// writing: the plain-text 503 would be garbage to a TLS client. The refusal
// is still counted.
func TestTLSConnectionOverTheCapIsClosedSilently(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	cert, key := ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}}).Write(t, t.TempDir(), "api")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  max_connections: 1
  tls: {certificates: [{cert_file: %q, key_file: %q}]}
routes:
  - {name: ok, match: {path_prefix: /}, static: {status: 200}}
`, cert, key)), "test")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := NewBuilder(logger)
	defer b.Close()
	snap, err := b.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, snap, logger)
	store, err := tlsconf.NewStore(cfg.Server.TLS, logger)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTLS(ln, store) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if cl := srv.ln.Load(); cl != nil {
			cl.closeAll()
		}
		<-done
	}()

	held, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "api.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	over, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := over.Read(make([]byte, 64))
	if n != 0 || err != io.EOF {
		t.Fatalf("refused TLS connection read %d bytes, %v; want a close with nothing written", n, err)
	}
	if got := srv.RefusedConnections(); got != 1 {
		t.Fatalf("refused %d", got)
	}
}

// The origin dialer reads the TLS files as they are at each new
// connection: after the origin moves to a certificate from another CA,
// connections fail verification until the CA bundle names that CA, and
// then succeed, with no reload.
func TestOriginDialerFollowsRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := testpki.NewCA(t, "old"), testpki.NewCA(t, "new")
	caFile := oldCA.WriteCA(t, dir, "ca")
	var current atomic.Pointer[tls.Certificate]
	current.Store(&oldCA.Issue(t, testpki.LeafOptions{CommonName: "o", DNS: []string{"origin.internal"}}).TLS)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current.Load(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	dial := dialer(ln.Addr().String(), 2*time.Second, time.Second, tlsconf.ClientConfig{Enabled: true, CAFile: caFile, ServerName: "origin.internal"})
	try := func() error {
		c, err := dial("")
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := try(); err != nil {
		t.Fatalf("old CA: %v", err)
	}
	current.Store(&newCA.Issue(t, testpki.LeafOptions{CommonName: "o", DNS: []string{"origin.internal"}}).TLS)
	err = try()
	var de *dialError
	if !errors.As(err, &de) || !de.handshake || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("new certificate, old bundle: %v", err)
	}
	testpki.WriteFile(t, caFile, newCA.CertPEM)
	if err := try(); err != nil {
		t.Fatalf("after the bundle was rotated: %v", err)
	}
}

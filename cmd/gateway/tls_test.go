package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/internal/testpki"
)

// The gateway's TLS wiring: the listener serves the configured
// certificate, its metrics are exported, a config reload that names new
// certificate files switches new handshakes to them, and a reload whose
// files went bad after validation is refused as a whole.
func TestTLSConfigReload(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	first := ca.Issue(t, testpki.LeafOptions{CommonName: "first", DNS: []string{"api.test"}})
	second := ca.Issue(t, testpki.LeafOptions{CommonName: "second", DNS: []string{"api.test"}})
	c1, k1 := first.Write(t, dir, "first")
	c2, k2 := second.Write(t, dir, "second")
	yaml := func(cert, key string) string {
		return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tls: {certificates: [{cert_file: %q, key_file: %q}]}
admin: {listen: ""}
access_log: {enabled: false}
routes:
  - {name: ok, match: {path_prefix: /}, static: {status: 200, body: ok}}
`, cert, key)
	}
	a, cfg := startAppWith(t, yaml(c1, k1))
	rt := a.rt
	if err := rt.startTLS(cfg.Server.TLS, a.server); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.server.ServeTLS(ln, rt.tls) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.server.Shutdown(ctx)
		<-served
	})
	servedCert := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "api.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := servedCert(); got != "first" {
		t.Fatalf("serving %q", got)
	}
	rec := httptest.NewRecorder()
	rt.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := fmt.Sprintf("floodgate_tls_cert_not_after_seconds{name=%q} %s", c1, strconv.FormatFloat(float64(first.Cert.NotAfter.Unix()), 'e', -1, 64))
	if body := rec.Body.String(); !strings.Contains(body, want) || !strings.Contains(body, "floodgate_tls_cert_reload_errors_total 0") {
		t.Fatalf("metrics lack %q:\n%s", want, body)
	}

	next, err := config.ParseWithEnv([]byte(yaml(c2, k2)), "tls.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.apply(next); err != nil {
		t.Fatal(err)
	}
	if got := servedCert(); got != "second" {
		t.Fatalf("after reload serving %q", got)
	}

	// Valid when loaded, gone when applied: the reload is refused.
	back, err := config.ParseWithEnv([]byte(yaml(c1, k1)), "tls.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(k1); err != nil {
		t.Fatal(err)
	}
	before := a.server.Snapshot()
	if err := a.apply(back); err == nil || !strings.Contains(err.Error(), "server.tls.certificates[0]: reading key_file") {
		t.Fatalf("apply = %v", err)
	}
	if a.server.Snapshot() != before || servedCert() != "second" {
		t.Fatal("a refused reload changed the running state")
	}
}

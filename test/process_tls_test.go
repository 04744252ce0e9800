package test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/testpki"
)

// The gateway binary with server.tls: it serves the configured certificate,
// runs the redirect listener, picks up a renewed certificate from its files
// by itself and keeps it when a later rewrite is bad, and stops cleanly.
func TestProcessTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "process CA")
	certFile, keyFile := ca.Issue(t, testpki.LeafOptions{CommonName: "first", DNS: []string{"api.test"}}).Write(t, dir, "api")
	path := filepath.Join(dir, "gateway.yaml")
	writeFile(t, path, fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tls:
    certificates: [{cert_file: %q, key_file: %q}]
    redirect: {listen: "127.0.0.1:0"}
    hsts: {max_age: 1h}
admin: {listen: "127.0.0.1:0"}
routes:
  - {name: ok, match: {path_prefix: /}, static: {status: 200, body: ok}}
`, certFile, keyFile))
	p := startProcess(t, path)
	var redirectAddr string
	for _, line := range strings.Split(p.logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["msg"] == "redirecting plain HTTP to https" {
			redirectAddr, _ = ev["addr"].(string)
		}
	}
	if redirectAddr == "" {
		t.Fatalf("no redirect listener in the logs:\n%s", p.logs.String())
	}
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "api.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	resp, body := httpsGet(t, httpsClient(t, ca, "api.test", nil, false), "https://"+p.addr+"/x")
	if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("Strict-Transport-Security") != "max-age=3600" {
		t.Fatalf("%d %q HSTS %q", resp.StatusCode, body, resp.Header.Get("Strict-Transport-Security"))
	}
	resp, _ = raw(t, redirectAddr, "GET /x?y=1 HTTP/1.1\r\nHost: api.test\r\n\r\n")
	// server.listen's port is 0 (chosen at start), so the default https
	// port is 443 and is left out.
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://api.test/x?y=1" {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	renewed := ca.Issue(t, testpki.LeafOptions{CommonName: "second", DNS: []string{"api.test"}})
	renewed.Write(t, dir, "api")
	p.waitFor(t, "TLS certificate reloaded", 10*time.Second)
	if got := served(); got != "second" {
		t.Fatalf("after renewal serving %q", got)
	}
	testpki.WriteFile(t, certFile, []byte("truncated"))
	ev := p.waitFor(t, "TLS certificate reload failed; keeping the previous certificate", 10*time.Second)
	if ev["cert_file"] != certFile || !strings.Contains(fmt.Sprint(ev["error"]), "no PEM CERTIFICATE block") {
		t.Fatalf("log line %v", ev)
	}
	if got := served(); got != "second" {
		t.Fatalf("after a bad rewrite serving %q", got)
	}
	p.signal(t, syscall.SIGTERM)
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logs.String())
	}
}

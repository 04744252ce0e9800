package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/internal/testpki"
)

// TLS settings are validated at load, their files read, and every problem
// names its key path: server.tls, origins.<name>.tls and the trusted
// identities beside the trusted CIDRs.
func TestTLSConfigErrorsNameKeyPaths(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	cert, key := ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}}).Write(t, dir, "api")
	missing := filepath.Join(dir, "missing.pem")
	yaml := fmt.Sprintf(`
server:
  listen: ":8443"
  tls:
    certificates: [{cert_file: %q, key_file: %q}, {cert_file: %q, key_file: %q}]
    client_auth: required
    min_version: "1.3"
origins:
  api:
    instances: [{address: "127.0.0.1:9000"}]
    tls: {enabled: true, ca_file: %q, cert_file: %q}
routes:
  - {name: api, match: {path_prefix: /}, origin: api}
loadshed:
  scoring:
    priority_header: {name: X-Priority, trusted_identities: ["spiffe://ok", "ops.internal"]}
  chaos: {enabled: true, min_score: 90, max_score: 100, header: X-Chaos, trusted_identities: ["dns:ops.internal"]}
`, cert, key, missing, key, missing, cert)
	_, err := ParseWithEnv([]byte(yaml), "test", nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"server.tls.certificates[1]: reading cert_file: open " + missing,
		"server.tls.client_ca_file: required when client_auth is required",
		"origins.api.tls.ca_file: reading CA bundle: open " + missing,
		"origins.api.tls.key_file: required with cert_file",
		`loadshed.scoring.priority_header.trusted_identities[1]: invalid identity "ops.internal"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "chaos") || strings.Contains(err.Error(), "certificates[0]") {
		t.Errorf("valid settings reported:\n%v", err)
	}

	ok := fmt.Sprintf(`
server:
  listen: ":8443"
  tls: {certificates: [{cert_file: %q, key_file: %q}], hsts: {max_age: 24h}}
`, cert, key)
	cfg, err := ParseWithEnv([]byte(ok), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Server.TLS.Enabled() || cfg.Server.TLS.MinVersion != "1.2" || cfg.Server.TLS.HSTS.HeaderValue() != "max-age=86400" {
		t.Fatalf("decoded %+v", cfg.Server.TLS)
	}
}

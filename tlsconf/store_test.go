package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/internal/syncbuf"
	"github.com/floodgate-dev/floodgate/internal/testpki"
)

// serveStore runs a TLS listener over store on loopback; every accepted
// connection completes its handshake and is closed.
func serveStore(t *testing.T, store *Store) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
			tc := tls.Server(c, store.TLSConfig())
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			_ = tc.Handshake()
			// Read until the client closes, so it sees the server's
			// verdict on its certificate (TLS 1.3 reports it after the
			// client's handshake returned).
			_, _ = io.Copy(io.Discard, tc)
			tc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// handshake connects with cfg and returns the server's leaf certificate,
// after a round trip so a refused client certificate surfaces as an error.
func handshake(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return nil, err
	}
	// The server never writes: a refused client certificate arrives as an
	// alert; otherwise the read times out... so close our side and read EOF.
	_ = c.CloseWrite()
	if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

type pki struct {
	ca  *testpki.CA
	dir string
}

func newPKI(t *testing.T) *pki { return &pki{ca: testpki.NewCA(t, "test CA"), dir: t.TempDir()} }

func (p *pki) cert(t *testing.T, name string, dns ...string) CertificateConfig {
	c, k := p.ca.Issue(t, testpki.LeafOptions{CommonName: name, DNS: dns}).Write(t, p.dir, name)
	return CertificateConfig{CertFile: c, KeyFile: k}
}

func (p *pki) client(sni string) *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool(), ServerName: sni}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestStore(t *testing.T, cfg ServerConfig, logger *slog.Logger) *Store {
	t.Helper()
	if logger == nil {
		logger = quietLogger()
	}
	if err := cfg.Validate(":0"); err != nil {
		t.Fatalf("config: %v", err)
	}
	s, err := NewStore(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSNISelection(t *testing.T) {
	p := newPKI(t)
	cfg := DefaultServerConfig()
	cfg.Certificates = []CertificateConfig{
		p.cert(t, "wild", "*.example.com"),
		p.cert(t, "api", "api.example.com"),
		p.cert(t, "fallback", "fallback.test"),
	}
	cfg.Certificates[2].Default = true
	addr := serveStore(t, newTestStore(t, cfg, nil))
	cases := []struct{ sni, want string }{
		{"api.example.com", "api"},      // exact beats wildcard, though listed later
		{"API.Example.com.", "api"},     // case and a trailing dot do not matter
		{"www.example.com", "wild"},     // wildcard
		{"fallback.test", "fallback"},   // exact
		{"a.b.example.com", "fallback"}, // a wildcard covers one label only
		{"example.com", "fallback"},     // ... and not the bare domain
		{"", "fallback"},                // no SNI: the default
	}
	for _, c := range cases {
		cfg := p.client(c.sni)
		if c.sni == "" {
			// No SNI to verify against: check the chain only.
			cfg = &tls.Config{InsecureSkipVerify: true}
		}
		leaf, err := handshake(addr, cfg)
		want := c.want
		if c.sni == "a.b.example.com" || c.sni == "example.com" {
			// The default certificate does not cover the name: the
			// client's verification fails, naming the mismatch.
			var he x509.HostnameError
			if !errors.As(err, &he) || !strings.Contains(Describe(err), "name mismatch") {
				t.Errorf("SNI %q: err = %v, want a hostname mismatch", c.sni, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("SNI %q: %v", c.sni, err)
			continue
		}
		if leaf.Subject.CommonName != want {
			t.Errorf("SNI %q: served %q, want %q", c.sni, leaf.Subject.CommonName, want)
		}
	}
	// Without a marked default, the first certificate is the default.
	cfg.Certificates[2].Default = false
	addr = serveStore(t, newTestStore(t, cfg, nil))
	if leaf, err := handshake(addr, &tls.Config{InsecureSkipVerify: true}); err != nil || leaf.Subject.CommonName != "wild" {
		t.Fatalf("no SNI without a marked default: %v %v", leaf, err)
	}
}

func TestVersionsAndALPN(t *testing.T) {
	p := newPKI(t)
	cfg := DefaultServerConfig()
	cfg.Certificates = []CertificateConfig{p.cert(t, "api", "api.test")}
	addr := serveStore(t, newTestStore(t, cfg, nil))

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test", MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("TLS 1.2 with min_version 1.2: %v", err)
	}
	if st := c.ConnectionState(); st.Version != tls.VersionTLS12 || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("version %x, ALPN %q: want TLS 1.2 and http/1.1 (no h2)", st.Version, st.NegotiatedProtocol)
	}
	c.Close()
	if _, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test", MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test", NextProtos: []string{"h2"}}); err == nil {
		t.Error("a client offering only h2 was accepted")
	}

	cfg.MinVersion = "1.3"
	addr = serveStore(t, newTestStore(t, cfg, nil))
	if _, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test", MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("TLS 1.2 accepted with min_version 1.3")
	}
	c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test"})
	if err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
	c.Close()
}

func TestClientAuth(t *testing.T) {
	p := newPKI(t)
	clientCA := testpki.NewCA(t, "client CA")
	caFile := clientCA.WriteCA(t, p.dir, "client-ca")
	good := clientCA.Issue(t, testpki.LeafOptions{CommonName: "deploy", URIs: []string{"spiffe://prod/ops"}, Client: true})
	stranger := testpki.NewCA(t, "other").Issue(t, testpki.LeafOptions{CommonName: "mallory", Client: true})
	base := DefaultServerConfig()
	base.Certificates = []CertificateConfig{p.cert(t, "api", "api.test")}

	for _, mode := range []ClientAuth{ClientAuthOff, ClientAuthOptional, ClientAuthRequired} {
		cfg := base
		cfg.ClientAuth = mode
		if mode != ClientAuthOff {
			cfg.ClientCAFile = caFile
		}
		addr := serveStore(t, newTestStore(t, cfg, nil))
		try := func(cert *testpki.Leaf) error {
			c := p.client("api.test")
			if cert != nil {
				// Sent whatever CAs the server names (crypto/tls would
				// otherwise withhold a certificate from a CA it does not
				// list, and connect without one).
				c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil }
			}
			_, err := handshake(addr, c)
			return err
		}
		noCert, goodCert, badCert := try(nil), try(good), try(stranger)
		wantNo, wantBad := mode != ClientAuthRequired, mode == ClientAuthOff
		if (noCert == nil) != wantNo {
			t.Errorf("%s: no certificate: err = %v", mode, noCert)
		}
		if goodCert != nil {
			t.Errorf("%s: a certificate from the CA: %v", mode, goodCert)
		}
		if (badCert == nil) != wantBad {
			t.Errorf("%s: a certificate from another CA: err = %v", mode, badCert)
		}
	}
}

// A bad new certificate (garbage, a key that does not match, expired) is
// refused with a log line naming the file; the old one stays. A good one
// replaces it, and the watch picks file changes up by itself.
func TestReloadKeepsTheOldCertificateWhenTheNewOneIsBad(t *testing.T) {
	p := newPKI(t)
	cfg := DefaultServerConfig()
	cfg.Certificates = []CertificateConfig{p.cert(t, "api", "api.test")}
	var log syncbuf.Buffer
	store := newTestStore(t, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	addr := serveStore(t, store)
	serial := func() string {
		t.Helper()
		leaf, err := handshake(addr, p.client("api.test"))
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return leaf.SerialNumber.String()
	}
	first := serial()
	certFile, keyFile := cfg.Certificates[0].CertFile, cfg.Certificates[0].KeyFile

	other := p.ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}})
	expired := p.ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	bad := []struct {
		name      string
		cert, key []byte
		logged    string
	}{
		{"garbage", []byte("not a certificate"), nil, "no PEM CERTIFICATE block"},
		{"mismatched key", other.CertPEM, nil, "private key does not match public key"},
		{"expired", expired.CertPEM, expired.KeyPEM, "certificate expired"},
	}
	original, _ := os.ReadFile(keyFile)
	for i, b := range bad {
		testpki.WriteFile(t, certFile, b.cert)
		if b.key != nil {
			testpki.WriteFile(t, keyFile, b.key)
		} else {
			testpki.WriteFile(t, keyFile, original)
		}
		store.Reload()
		if got := store.ReloadErrors(); got != uint64(i+1) {
			t.Fatalf("%s: reload errors = %d, want %d", b.name, got, i+1)
		}
		if s := serial(); s != first {
			t.Fatalf("%s: serving a new certificate %s", b.name, s)
		}
		if out := log.String(); !strings.Contains(out, "keeping the previous certificate") || !strings.Contains(out, b.logged) || !strings.Contains(out, certFile) {
			t.Fatalf("%s: log does not name the file and the reason:\n%s", b.name, out)
		}
	}

	// A good pair, picked up by the watch.
	if err := store.Watch(); err != nil {
		t.Fatal(err)
	}
	before := store.Reloads()
	fresh := p.ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}})
	fresh.Write(t, filepath.Dir(certFile), "api")
	waitFor(t, "the watch to reload the new certificate", func() bool {
		return store.Reloads() > before && store.Certificates()[0].NotAfter.Equal(fresh.Cert.NotAfter)
	})
	if s := serial(); s != fresh.Cert.SerialNumber.String() {
		t.Fatalf("serving %s after the reload, want %s", s, fresh.Cert.SerialNumber)
	}
}

// waitFor polls cond (a state another goroutine changes) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestValidateNamesKeyPathsAndFiles(t *testing.T) {
	p := newPKI(t)
	good := p.cert(t, "api", "api.test")
	expired := p.ca.Issue(t, testpki.LeafOptions{CommonName: "old", DNS: []string{"old.test"}, NotAfter: time.Now().Add(-time.Minute)})
	ec, ek := expired.Write(t, p.dir, "old")
	noNames := p.cert(t, "nameless")
	cfg := DefaultServerConfig()
	cfg.Certificates = []CertificateConfig{
		good,
		{CertFile: ec, KeyFile: ek},
		{CertFile: good.CertFile, KeyFile: ek},
		{CertFile: filepath.Join(p.dir, "missing.crt"), KeyFile: good.KeyFile},
		{CertFile: good.CertFile},
		noNames,
		{CertFile: good.CertFile, KeyFile: good.KeyFile, Names: []string{"ok.test", "bad name", "*.*.x"}, Default: true},
		{CertFile: good.CertFile, KeyFile: good.KeyFile, Default: true},
	}
	cfg.MinVersion = "1.1"
	cfg.ClientAuth = "sometimes"
	cfg.Redirect.Listen = ":8443"
	err := cfg.Validate(":8443")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"min_version: must be \"1.2\" or \"1.3\"",
		"certificates[1]: cert_file " + ec + ": certificate expired at",
		"certificates[2]: cert_file " + good.CertFile + " with key_file " + ek + ": tls: private key does not match public key",
		"certificates[3]: reading cert_file: open " + filepath.Join(p.dir, "missing.crt"),
		"certificates[4].key_file: required",
		"certificates[5].names: the certificate has no DNS names",
		"certificates[6].names[1]: want a DNS name or *.domain, got \"bad name\"",
		"certificates[6].names[2]: want a DNS name or *.domain",
		"certificates: at most one certificate may be the default",
		"client_auth: must be one of off, optional, required",
		"redirect.listen: must differ from server.listen",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "certificates[0]") {
		t.Errorf("the good certificate was reported:\n%v", err)
	}

	off := DefaultServerConfig()
	off.ClientAuth = ClientAuthRequired
	if err := off.Validate(":80"); err == nil || !strings.Contains(err.Error(), "client_ca_file: required when client_auth is required") ||
		!strings.Contains(err.Error(), "client_auth: needs certificates") {
		t.Errorf("client auth without TLS or CA: %v", err)
	}
	if err := DefaultServerConfig().Validate(":80"); err != nil {
		t.Errorf("the default (TLS off) is invalid: %v", err)
	}
}

func TestClientConfigValidate(t *testing.T) {
	p := newPKI(t)
	caFile := p.ca.WriteCA(t, p.dir, "ca")
	good := p.cert(t, "gw", "gw.test")
	ok := ClientConfig{Enabled: true, CAFile: caFile, ServerName: "api.internal", CertFile: good.CertFile, KeyFile: good.KeyFile}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	cfg, err := ok.Build()
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "api.internal" {
		t.Fatalf("Build: %+v %v", cfg, err)
	}
	bad := ClientConfig{Enabled: true, CAFile: good.KeyFile, CertFile: good.CertFile, MinVersion: "1.0", ServerName: "a b"}
	err = bad.Validate()
	for _, want := range []string{"ca_file: CA bundle " + good.KeyFile + ": no PEM CERTIFICATE block", "key_file: required with cert_file", "min_version:", "server_name:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if err := (ClientConfig{CAFile: caFile}).Validate(); err == nil || !strings.Contains(err.Error(), "enabled: must be true") {
		t.Errorf("settings without enabled: %v", err)
	}
	if c := ForAddr(&tls.Config{}, "10.0.0.1:443"); c.ServerName != "10.0.0.1" {
		t.Errorf("ForAddr: %q", c.ServerName)
	}
}

// An origin's rotated CA bundle is used by the next connection; a bad
// rewrite keeps the previous config and says why.
func TestClientSourceFollowsItsFiles(t *testing.T) {
	p := newPKI(t)
	caFile := p.ca.WriteCA(t, p.dir, "origin-ca")
	src := NewClientSource(ClientConfig{Enabled: true, CAFile: caFile})
	first, err := src.Config()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := src.Config(); again != first {
		t.Fatal("rebuilt although no file changed")
	}
	next := testpki.NewCA(t, "next CA")
	testpki.WriteFile(t, caFile, next.CertPEM)
	second, err := src.Config()
	if err != nil || second == first || !second.RootCAs.Equal(next.Pool()) {
		t.Fatalf("after rotation: %v, rebuilt %v", err, second != first)
	}
	testpki.WriteFile(t, caFile, []byte("garbage"))
	kept, err := src.Config()
	if err != nil || kept != second || src.LastError() == nil || !strings.Contains(src.LastError().Error(), "no PEM CERTIFICATE block") {
		t.Fatalf("bad rewrite: kept %v, %v, last error %v", kept == second, err, src.LastError())
	}
	if off, err := NewClientSource(ClientConfig{}).Config(); off != nil || err != nil {
		t.Fatalf("TLS off: %v %v", off, err)
	}
}

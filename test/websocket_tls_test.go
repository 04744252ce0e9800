package test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/floodgate-dev/floodgate/tlsconf"
)

// selfSigned returns a certificate for 127.0.0.1 made in the test, and a
// pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "floodgate test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// The tunnel works on whatever connection the server accepted: over the
// gateway's TLS listener (ServeTLS) messages, pings and close codes pass,
// and a client that vanishes under TLS ends the tunnel.
func TestWebSocketOverTLS(t *testing.T) {
	o := startWSOrigin(t)
	gw := startGateway(t, wsConfig(o.addr, "{idle_timeout: 1m}", ""))
	cert, pool := selfSigned(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "gw.crt"), filepath.Join(dir, "gw.key")
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	tcfg := tlsconf.DefaultServerConfig()
	tcfg.Certificates = []tlsconf.CertificateConfig{{CertFile: certFile, KeyFile: keyFile, Default: true}}
	store, err := tlsconf.NewStore(tcfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The production TLS listener (ServeTLS) beside the harness's plain one.
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gw.server.ServeTLS(ln, store)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
		store.Close()
	})

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://"+ln.Addr().String()+"/ws/echo", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer c.CloseNow()
	readErr := make(chan error, 1)
	const n = 200
	go func() {
		for i := 0; i < n; i++ {
			if _, msg, err := c.Read(ctx); err != nil || len(msg) != 1000+i {
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()
	for i := 0; i < n; i++ {
		if err := c.Write(ctx, websocket.MessageBinary, make([]byte, 1000+i)); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
		}
	}
	if err := <-readErr; err != nil {
		t.Fatalf("echo over TLS: %v", err)
	}
	if err := c.Close(websocket.StatusCode(4003), "tls bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if code := o.awaitEnd(t); code != 4003 {
		t.Errorf("origin saw close %v, want 4003", code)
	}

	// A client that vanishes (TCP closed under TLS) ends the tunnel too.
	c2, _, err := websocket.Dial(ctx, "wss://"+ln.Addr().String()+"/ws/echo", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	c2.CloseNow()
	if code := o.awaitEnd(t); code != -1 {
		t.Errorf("origin saw close %v after the client vanished, want none", code)
	}
	awaitNoTunnels(t, gw)
}

// Origin TLS (origins.<name>.tls): the handshake and the tunnel use the
// pool's dialer, so the origin is reached over TLS with its CA; an origin
// whose certificate the CA does not sign fails the handshake with 502
// origin_connect_error naming the TLS failure.
func TestWebSocketToTLSOrigin(t *testing.T) {
	o, srv := startWSOriginServer(t, true)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "origin-ca.pem")
	writeFile(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	other, _ := selfSigned(t)
	otherCA := filepath.Join(dir, "other-ca.pem")
	writeFile(t, otherCA, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate[0]})))
	cfg := wsConfig(o.addr, "{idle_timeout: 1m}", `
  - name: wrong-ca
    match: {path_prefix: /wrong}
    rewrite: {strip_prefix: /wrong}
    origin: wrongca
`)
	cfg = strings.Replace(cfg, "    timeouts: {connect: 500ms, response: 2s}\n",
		fmt.Sprintf("    timeouts: {connect: 2s, response: 2s}\n    tls: {enabled: true, ca_file: %q}\n  wrongca:\n    instances: [{address: %q}]\n    tls: {enabled: true, ca_file: %q}\n", caFile, o.addr, otherCA), 1)
	// The catch-all route must stay last.
	cfg = strings.Replace(cfg, `  - name: ws
    match: {path_prefix: /}
    origin: ws
`, "", 1) + `  - name: ws
    match: {path_prefix: /}
    origin: ws
`
	gw := startGateway(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	c := mustDialWS(t, ctx, gw.addr, "/ws/echo")
	defer c.CloseNow()
	for i := 0; i < 100; i++ {
		msg := []byte(fmt.Sprintf("over origin TLS %d", i))
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	if err := c.Close(websocket.StatusCode(4004), "bye over tls"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if code := o.awaitEnd(t); code != 4004 {
		t.Errorf("origin saw close %v, want 4004", code)
	}

	_, resp, err := dialWS(t, ctx, gw.addr, "/wrong/ws/echo")
	if err == nil || resp == nil {
		t.Fatalf("handshake through an untrusted origin certificate: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Floodgate-Status") != "origin_connect_error" || !strings.Contains(string(body), "TLS handshake") {
		t.Errorf("got %d %s %q, want 502 origin_connect_error naming the TLS handshake", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body)
	}
	awaitNoTunnels(t, gw)
}

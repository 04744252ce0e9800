package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
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

// The tunnel works on whatever connection the server accepted: over TLS
// (the gateway's server serving a TLS listener) messages, pings and close
// codes pass, and the client's TLS close reaches the origin as an end of
// stream.
func TestWebSocketOverTLS(t *testing.T) {
	o := startWSOrigin(t)
	gw := startGateway(t, wsConfig(o.addr, "{idle_timeout: 1m}", ""))
	cert, pool := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gw.server.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}))
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
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

// Package tlsconf owns the gateway's TLS settings: the server and origin
// TLS config sections, loading PEM certificates, keys and CA bundles with
// errors that name the file, the server's certificate store (chosen by SNI,
// reloaded when its files change, the old set kept when a new file is bad),
// and plain words for TLS failures. It does not import fasthttp: the edge
// listener and the origin dialer use the *tls.Config values it builds.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"
)

// LoadKeyPair reads a PEM certificate chain and its private key. The leaf
// is parsed (Leaf is set), and a certificate that has expired or is not yet
// valid is refused: serving it would fail every client's verification.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading key_file: %w", err)
	}
	if !containsBlock(certPEM, "CERTIFICATE") {
		return nil, fmt.Errorf("cert_file %s: no PEM CERTIFICATE block", certFile)
	}
	if !containsPrivateKey(keyPEM) {
		return nil, fmt.Errorf("key_file %s: no PEM private key block", keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s with key_file %s: %w", certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("cert_file %s: %w", certFile, err)
		}
		pair.Leaf = leaf
	}
	now := time.Now()
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("cert_file %s: certificate expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("cert_file %s: certificate not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &pair, nil
}

// LoadCAPool reads a PEM bundle of CA certificates.
func LoadCAPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; len(rest) > 0; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA bundle %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA bundle %s: no PEM CERTIFICATE block", file)
	}
	return pool, nil
}

func containsBlock(data []byte, typ string) bool {
	for rest := data; len(rest) > 0; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if b.Type == typ {
			return true
		}
	}
	return false
}

func containsPrivateKey(data []byte) bool {
	for _, t := range []string{"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"} {
		if containsBlock(data, t) {
			return true
		}
	}
	return false
}

package tlsconf

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/decode"
)

// ClientAuth is server.tls.client_auth: whether clients present
// certificates.
type ClientAuth string

// Client certificate policies.
const (
	// ClientAuthOff asks for no client certificate.
	ClientAuthOff ClientAuth = "off"
	// ClientAuthOptional verifies a certificate the client offers against
	// the CA bundle and admits clients that offer none.
	ClientAuthOptional ClientAuth = "optional"
	// ClientAuthRequired refuses the handshake without a certificate the
	// CA bundle verifies.
	ClientAuthRequired ClientAuth = "required"
)

// ServerConfig is server.tls. TLS is on when Certificates is not empty.
type ServerConfig struct {
	// Certificates are chosen by the client's SNI name: an exact name
	// first, then a wildcard ("*.example.com" covers one label), then the
	// default certificate (the one marked default, else the first).
	Certificates []CertificateConfig `mapstructure:"certificates"`
	// MinVersion is "1.2" (the default) or "1.3". Cipher suites are Go's
	// defaults.
	MinVersion string `mapstructure:"min_version"`
	// ClientAuth is off, optional or required (mTLS); optional and required
	// need ClientCAFile.
	ClientAuth   ClientAuth `mapstructure:"client_auth"`
	ClientCAFile string     `mapstructure:"client_ca_file"`
	// HandshakeTimeout bounds a client's TLS handshake.
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`
	// Redirect, when its listen address is set, runs a plain-HTTP listener
	// that answers every request with a redirect to https.
	Redirect RedirectConfig `mapstructure:"redirect"`
	// HSTS adds Strict-Transport-Security to responses over TLS when
	// MaxAge is positive.
	HSTS HSTSConfig `mapstructure:"hsts"`
}

// CertificateConfig is one certificate and key (PEM files).
type CertificateConfig struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// Names are the SNI names this certificate answers ("api.example.com",
	// "*.example.com"); empty means the certificate's own DNS names.
	Names []string `mapstructure:"names"`
	// Default makes this the certificate for clients without SNI or with a
	// name no certificate has.
	Default bool `mapstructure:"default"`
}

// RedirectConfig is the plain listener that sends clients to https.
type RedirectConfig struct {
	// Listen is its address, e.g. ":80"; empty: no redirect listener.
	Listen string `mapstructure:"listen"`
	// HTTPSPort is the port redirects point to; 0 means server.listen's.
	HTTPSPort int `mapstructure:"https_port"`
}

// HSTSConfig is the Strict-Transport-Security header.
type HSTSConfig struct {
	// MaxAge is how long browsers remember to use https only; 0: no header.
	MaxAge            time.Duration `mapstructure:"max_age"`
	IncludeSubdomains bool          `mapstructure:"include_subdomains"`
	Preload           bool          `mapstructure:"preload"`
}

// DefaultServerConfig is server.tls before the YAML: off, TLS 1.2 minimum,
// no client certificates, a 10 s handshake bound.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{MinVersion: "1.2", ClientAuth: ClientAuthOff, HandshakeTimeout: 10 * time.Second}
}

// Enabled reports whether the client listener speaks TLS.
func (c ServerConfig) Enabled() bool { return len(c.Certificates) > 0 }

// Version returns MinVersion as a crypto/tls constant.
func (c ServerConfig) Version() uint16 {
	if c.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// HeaderValue is the Strict-Transport-Security value, "" when off.
func (h HSTSConfig) HeaderValue() string {
	if h.MaxAge <= 0 {
		return ""
	}
	v := "max-age=" + strconv.FormatInt(int64(h.MaxAge/time.Second), 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// Validate checks the section and loads every file it names, so a missing
// file, a key that does not match its certificate or an expired
// certificate is a config error with its key path (relative to
// server.tls). serverListen is server.listen (the redirect must not reuse
// it).
func (c ServerConfig) Validate(serverListen string) error {
	var e decode.Errors
	switch c.MinVersion {
	case "1.2", "1.3":
	default:
		e.Add("min_version", `must be "1.2" or "1.3", got %q`, c.MinVersion)
	}
	if c.HandshakeTimeout <= 0 {
		e.Add("handshake_timeout", "must be greater than zero")
	}
	defaults := 0
	for i, cc := range c.Certificates {
		at := fmt.Sprintf("certificates[%d]", i)
		if cc.Default {
			defaults++
		}
		for j, n := range cc.Names {
			if err := checkName(n); err != nil {
				e.Add(fmt.Sprintf("%s.names[%d]", at, j), "%v", err)
			}
		}
		switch {
		case cc.CertFile == "":
			e.Add(at+".cert_file", "required")
		case cc.KeyFile == "":
			e.Add(at+".key_file", "required")
		default:
			pair, err := LoadKeyPair(cc.CertFile, cc.KeyFile)
			if err != nil {
				e.Add(at, "%v", err)
			} else if len(cc.Names) == 0 && len(certNames(pair)) == 0 {
				e.Add(at+".names", "the certificate has no DNS names: list the SNI names it serves")
			}
		}
	}
	if defaults > 1 {
		e.Add("certificates", "at most one certificate may be the default, %d are", defaults)
	}
	switch c.ClientAuth {
	case ClientAuthOff:
	case ClientAuthOptional, ClientAuthRequired:
		if c.ClientCAFile == "" {
			e.Add("client_ca_file", "required when client_auth is %s", c.ClientAuth)
		}
	default:
		e.Add("client_auth", "must be one of off, optional, required; got %q", c.ClientAuth)
	}
	if c.ClientCAFile != "" {
		if _, err := LoadCAPool(c.ClientCAFile); err != nil {
			e.Add("client_ca_file", "%v", err)
		}
	}
	if c.HSTS.MaxAge < 0 {
		e.Add("hsts.max_age", "must not be negative (0: no header)")
	}
	if c.Redirect.HTTPSPort < 0 || c.Redirect.HTTPSPort > 65535 {
		e.Add("redirect.https_port", "must be a port number, got %d", c.Redirect.HTTPSPort)
	}
	if r := c.Redirect.Listen; r != "" {
		if _, port, err := net.SplitHostPort(r); err != nil {
			e.Add("redirect.listen", "want [host]:port, got %q", r)
		} else if r == serverListen && port != "0" {
			e.Add("redirect.listen", "must differ from server.listen")
		}
	}
	if !c.Enabled() {
		// Everything else describes a TLS listener there isn't.
		switch {
		case c.ClientAuth != ClientAuthOff && c.ClientAuth != "":
			e.Add("client_auth", "needs certificates (TLS is off)")
		case c.Redirect.Listen != "":
			e.Add("redirect.listen", "needs certificates (TLS is off)")
		case c.HSTS.MaxAge > 0:
			e.Add("hsts", "needs certificates (TLS is off)")
		}
	}
	return e.Err()
}

// checkName accepts a DNS name or a one-label wildcard ("*.example.com").
func checkName(n string) error {
	name := strings.TrimPrefix(n, "*.")
	if name == "" || strings.Contains(name, "*") {
		return fmt.Errorf("want a DNS name or *.domain, got %q", n)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("want a DNS name or *.domain, got %q", n)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("want a DNS name or *.domain, got %q", n)
			}
		}
	}
	return nil
}

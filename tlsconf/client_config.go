package tlsconf

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/floodgate-dev/floodgate/decode"
)

// ClientConfig is origins.<name>.tls: how the gateway speaks TLS to an
// origin's instances (requests and health checks alike). It is comparable,
// so connection pools can key on it.
type ClientConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// CAFile is the CA bundle that verifies the origin's certificate;
	// empty means the system's roots.
	CAFile string `mapstructure:"ca_file"`
	// ServerName is the name sent as SNI and verified in the origin's
	// certificate; empty means the instance's host.
	ServerName string `mapstructure:"server_name"`
	// CertFile and KeyFile are the gateway's client certificate, for
	// origins that require mTLS.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// InsecureSkipVerify accepts any certificate the origin presents. It
	// is logged as a warning whenever the config is loaded.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `mapstructure:"min_version"`
}

// Validate checks the section and loads its files, each problem with its
// key path relative to the section.
func (c ClientConfig) Validate() error {
	var e decode.Errors
	if !c.Enabled {
		if c != (ClientConfig{}) && c != (ClientConfig{MinVersion: c.MinVersion}) {
			e.Add("enabled", "must be true for the other tls keys to apply")
		}
		return e.Err()
	}
	switch c.MinVersion {
	case "", "1.2", "1.3":
	default:
		e.Add("min_version", `must be "1.2" or "1.3", got %q`, c.MinVersion)
	}
	if c.CAFile != "" {
		if _, err := LoadCAPool(c.CAFile); err != nil {
			e.Add("ca_file", "%v", err)
		}
	}
	switch {
	case c.CertFile == "" && c.KeyFile == "":
	case c.CertFile == "":
		e.Add("cert_file", "required with key_file")
	case c.KeyFile == "":
		e.Add("key_file", "required with cert_file")
	default:
		if _, err := LoadKeyPair(c.CertFile, c.KeyFile); err != nil {
			e.Add("cert_file", "%v", err)
		}
	}
	if c.ServerName != "" && checkName(c.ServerName) != nil && net.ParseIP(c.ServerName) == nil {
		e.Add("server_name", "want a DNS name or an IP address, got %q", c.ServerName)
	}
	return e.Err()
}

// Build returns the client config for dialling instances (nil when TLS is
// off). ServerName may be empty: DialConfig fills it per instance.
func (c ClientConfig) Build() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // operator's explicit choice, warned at load
		NextProtos:         ALPN,
		// Each pool dials many connections to the same instances.
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if c.MinVersion == "1.3" {
		cfg.MinVersion = tls.VersionTLS13
	}
	if c.CAFile != "" {
		pool, err := LoadCAPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		pair, err := LoadKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{*pair}
	}
	return cfg, nil
}

// ForAddr returns cfg for dialling addr (host:port): the SNI name and the
// name verified default to the instance's host.
func ForAddr(cfg *tls.Config, addr string) *tls.Config {
	if cfg == nil || cfg.ServerName != "" {
		return cfg
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}

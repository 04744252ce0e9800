package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"os"
	"sync"
)

// ClientSource hands out an origin's client TLS config, rebuilt when one of
// its files (CA bundle, client certificate, key) has changed: each new
// connection checks their content, so a rotated
// certificate is used by the next connection without a config reload, and
// pooled connections are not touched. Files that fail to load keep the
// previous config in use (the failure is returned by LastError) until
// they change again.
type ClientSource struct {
	cfg ClientConfig

	mu     sync.Mutex
	built  *tls.Config
	stamp  string // the files' state built is from
	failed string // the files' state that last failed to build
	err    error
}

// NewClientSource returns the source for c; Config builds on first use.
func NewClientSource(c ClientConfig) *ClientSource { return &ClientSource{cfg: c} }

// Config returns the current client config (nil when TLS is off). It
// fails only when no config could ever be built.
func (s *ClientSource) Config() (*tls.Config, error) {
	if !s.cfg.Enabled {
		return nil, nil
	}
	stamp := s.filesStamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.built != nil && (stamp == s.stamp || stamp == s.failed) {
		return s.built, nil
	}
	if s.built == nil && stamp == s.failed {
		return nil, s.err
	}
	cfg, err := s.cfg.Build()
	if err != nil {
		s.failed, s.err = stamp, err
		if s.built != nil {
			return s.built, nil // keep the previous files' config
		}
		return nil, err
	}
	s.built, s.stamp, s.failed, s.err = cfg, stamp, "", nil
	return cfg, nil
}

// LastError is why the files' current state could not be loaded (nil when
// the config in use is built from them).
func (s *ClientSource) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// filesStamp identifies the content of the source's files. They are a few
// KiB, read once per new connection (rare next to requests on pooled
// ones); sizes and modification times would miss a rewrite within the
// file system's timestamp granularity.
func (s *ClientSource) filesStamp() string {
	h := sha256.New()
	for _, f := range []string{s.cfg.CAFile, s.cfg.CertFile, s.cfg.KeyFile} {
		if f == "" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			data = []byte("unreadable: " + err.Error())
		}
		_, _ = h.Write([]byte(f))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write(data)
		_, _ = h.Write([]byte{0})
	}
	return string(h.Sum(nil))
}

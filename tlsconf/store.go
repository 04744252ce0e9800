package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodgate-dev/floodgate/filewatch"
)

// ReloadDebounce is how long the store waits after the last change to its
// files before reading them: a certificate and its key are written one
// after the other, and reading between the two would see a mismatch.
const ReloadDebounce = 200 * time.Millisecond

// ALPN is the only application protocol the gateway offers: it serves
// HTTP/1.1 (no h2). A client that offers ALPN without it is refused in the
// handshake rather than served a protocol it did not ask for.
var ALPN = []string{"http/1.1"}

// Store holds the server's certificates and client CA bundle. Handshakes
// read the current set without a lock (tls.Config.GetConfigForClient over
// an atomically swapped set), so a reload never touches a connection that
// is open or handshaking. A reload that finds a bad file (unreadable,
// not PEM, a key that does not match, expired) logs it with the file's
// name, counts it, and keeps serving the previous version of that file.
type Store struct {
	log  *slog.Logger
	base *tls.Config

	mu        sync.Mutex // serializes Configure and Reload
	cfg       ServerConfig
	pairs     []loadedPair
	clientCAs *x509.CertPool
	stopWatch func()

	cur          atomic.Pointer[certSet]
	reloadErrors atomic.Uint64
	reloads      atomic.Uint64
}

type loadedPair struct {
	CertificateConfig
	cert *tls.Certificate
}

// certSet is one immutable generation of certificates.
type certSet struct {
	config *tls.Config
	exact  map[string]*tls.Certificate
	wild   map[string]*tls.Certificate // by the suffix after "*."
	def    *tls.Certificate
	certs  []CertInfo
}

// CertInfo describes a certificate being served, for metrics.
type CertInfo struct {
	// Name is the certificate's cert_file, as configured.
	Name     string
	NotAfter time.Time
}

// NewStore loads every file cfg names; any failure is an error (there is
// nothing older to keep at start-up).
func NewStore(cfg ServerConfig, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Store{log: logger}
	// Every setting comes from the current set (configForClient); these
	// only shape what crypto/tls checks before asking for it.
	s.base = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         ALPN,
		GetConfigForClient: s.configForClient,
	}
	if err := s.Configure(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// TLSConfig is the listener's config. Its settings come from the current
// set on every handshake.
func (s *Store) TLSConfig() *tls.Config { return s.base }

func (s *Store) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return s.cur.Load().config, nil
}

// Configure replaces the configuration (a config reload): every file is
// loaded, and any failure leaves the store as it was. A running watch
// follows the new files.
func (s *Store) Configure(cfg ServerConfig) error {
	commit, err := s.Prepare(cfg)
	if err != nil {
		return err
	}
	return commit()
}

// Prepare loads every file cfg names and returns the function that makes
// cfg current; until it runs nothing changes, so a config reload can check
// every section before applying any. The commit fails only when watching
// the new files fails (the new certificates are served regardless).
func (s *Store) Prepare(cfg ServerConfig) (commit func() error, err error) {
	pairs := make([]loadedPair, len(cfg.Certificates))
	var errs []error
	for i, cc := range cfg.Certificates {
		p, err := LoadKeyPair(cc.CertFile, cc.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificates[%d]: %w", i, err))
			continue
		}
		pairs[i] = loadedPair{CertificateConfig: cc, cert: p}
	}
	var pool *x509.CertPool
	if cfg.ClientAuth != ClientAuthOff && cfg.ClientAuth != "" {
		var err error
		if pool, err = LoadCAPool(cfg.ClientCAFile); err != nil {
			errs = append(errs, fmt.Errorf("client_ca_file: %w", err))
		}
	}
	if len(pairs) == 0 {
		errs = append(errs, errors.New("certificates: at least one is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return func() error {
		s.mu.Lock()
		s.cfg, s.pairs, s.clientCAs = cfg, pairs, pool
		s.cur.Store(s.buildSet())
		stop := s.stopWatch
		s.stopWatch = nil
		s.mu.Unlock()
		if stop == nil {
			return nil
		}
		// Restart the watch on the new files; stopping waits for a reload
		// in progress, which needs s.mu.
		stop()
		return s.Watch()
	}, nil
}

// Reload re-reads every file. A file that fails keeps its previous
// version (logged with its name and counted); the others are updated.
func (s *Store) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads.Add(1)
	changed := false
	for i := range s.pairs {
		p := &s.pairs[i]
		fresh, err := LoadKeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			s.reloadErrors.Add(1)
			s.log.Error("TLS certificate reload failed; keeping the previous certificate",
				"cert_file", p.CertFile, "key_file", p.KeyFile, "error", err.Error())
			continue
		}
		if !sameCert(fresh, p.cert) {
			p.cert = fresh
			changed = true
			s.log.Info("TLS certificate reloaded", "cert_file", p.CertFile,
				"names", strings.Join(p.names(), ","), "not_after", fresh.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	if s.clientCAs != nil {
		pool, err := LoadCAPool(s.cfg.ClientCAFile)
		if err != nil {
			s.reloadErrors.Add(1)
			s.log.Error("TLS client CA bundle reload failed; keeping the previous bundle",
				"client_ca_file", s.cfg.ClientCAFile, "error", err.Error())
		} else if !pool.Equal(s.clientCAs) {
			s.clientCAs = pool
			changed = true
			s.log.Info("TLS client CA bundle reloaded", "client_ca_file", s.cfg.ClientCAFile)
		}
	}
	if changed {
		s.cur.Store(s.buildSet())
	}
}

func sameCert(a, b *tls.Certificate) bool {
	if a == nil || b == nil || len(a.Certificate) != len(b.Certificate) {
		return false
	}
	for i := range a.Certificate {
		if string(a.Certificate[i]) != string(b.Certificate[i]) {
			return false
		}
	}
	return true
}

// names are the SNI names a pair answers.
func (p *loadedPair) names() []string {
	if len(p.Names) > 0 {
		return p.Names
	}
	return certNames(p.cert)
}

// certNames are a certificate's DNS names (SNI never carries an IP).
func certNames(c *tls.Certificate) []string {
	if c == nil || c.Leaf == nil {
		return nil
	}
	return c.Leaf.DNSNames
}

// buildSet compiles the current pairs into a new immutable set; s.mu held.
func (s *Store) buildSet() *certSet {
	set := &certSet{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for i := range s.pairs {
		p := &s.pairs[i]
		if p.Default || set.def == nil && i == 0 {
			set.def = p.cert
		}
		// The first certificate listed wins a name two of them claim.
		for _, n := range p.names() {
			n = strings.ToLower(n)
			if suffix, ok := strings.CutPrefix(n, "*."); ok {
				if set.wild[suffix] == nil {
					set.wild[suffix] = p.cert
				}
			} else if set.exact[n] == nil {
				set.exact[n] = p.cert
			}
		}
		set.certs = append(set.certs, CertInfo{Name: p.CertFile, NotAfter: p.cert.Leaf.NotAfter})
	}
	cfg := &tls.Config{
		MinVersion:     s.cfg.Version(),
		NextProtos:     ALPN,
		GetCertificate: set.pick,
	}
	switch s.cfg.ClientAuth {
	case ClientAuthOptional:
		cfg.ClientAuth, cfg.ClientCAs = tls.VerifyClientCertIfGiven, s.clientCAs
	case ClientAuthRequired:
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, s.clientCAs
	}
	set.config = cfg
	return set
}

// pick chooses the certificate for a handshake: the exact SNI name, then a
// wildcard covering its first label, then the default.
func (set *certSet) pick(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := set.exact[name]; c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := set.wild[name[i+1:]]; c != nil {
				return c, nil
			}
		}
	}
	return set.def, nil
}

// Watch reloads the store whenever one of its files changes, until Close.
func (s *Store) Watch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopWatch != nil {
		return nil
	}
	return s.watchLocked()
}

func (s *Store) watchLocked() error {
	var files []string
	for _, p := range s.pairs {
		files = append(files, p.CertFile, p.KeyFile)
	}
	if s.clientCAs != nil {
		files = append(files, s.cfg.ClientCAFile)
	}
	stop, err := filewatch.Watch(context.Background(), files, ReloadDebounce, s.Reload)
	if err != nil {
		return fmt.Errorf("watching TLS files: %w", err)
	}
	s.stopWatch = stop
	return nil
}

// Close stops the watch. It must not be called from inside a reload.
func (s *Store) Close() {
	s.mu.Lock()
	stop := s.stopWatch
	s.stopWatch = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Certificates lists the certificates being served.
func (s *Store) Certificates() []CertInfo { return s.cur.Load().certs }

// ReloadErrors counts files a reload found bad (and kept the old version of).
func (s *Store) ReloadErrors() uint64 { return s.reloadErrors.Load() }

// Reloads counts reloads run (file changes seen).
func (s *Store) Reloads() uint64 { return s.reloads.Load() }

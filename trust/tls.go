package trust

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
)

// TLS is what a request's TLS connection says about its client. It is
// computed once per connection, after the handshake, and shared (read
// only) by every request on it.
type TLS struct {
	// Version is the negotiated protocol version (tls.VersionTLS12, ...).
	Version uint16
	// ServerName is the SNI name the client asked for ("" if none).
	ServerName string
	// Names are the identities of the client certificate the handshake
	// verified against server.tls.client_ca_file, in their canonical
	// spelling: "uri:spiffe://cluster/ns/ops/sa/deploy", "dns:ops.internal",
	// "cn:ops". Empty when the client presented no certificate.
	Names []string
}

// FromConnectionState describes a completed handshake.
func FromConnectionState(cs *tls.ConnectionState) *TLS {
	t := &TLS{Version: cs.Version, ServerName: cs.ServerName}
	// Only a verified chain names anyone: with client_auth off a client
	// certificate is never asked for, and an unverified one proves nothing.
	if len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 {
		t.Names = CertificateNames(cs.PeerCertificates[0])
	}
	return t
}

// VersionName is "1.2" or "1.3" (or tls.VersionName's words for others).
func (t *TLS) VersionName() string {
	switch t.Version {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return tls.VersionName(t.Version)
}

// CertificateNames lists a certificate's identities in canonical form:
// every URI SAN ("uri:..."), every DNS SAN ("dns:...") and the subject
// common name ("cn:...").
func CertificateNames(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, "uri:"+u.String())
	}
	for _, d := range c.DNSNames {
		out = append(out, "dns:"+strings.ToLower(d))
	}
	if c.Subject.CommonName != "" {
		out = append(out, "cn:"+c.Subject.CommonName)
	}
	return out
}

// CertNames are the verified certificate identities of the request's
// client: the TLS peer's, when the peer is the client. Behind a trusted
// proxy the certificate names the proxy, not the client whose request it
// forwards, so it vouches for nothing.
func (id Identity) CertNames() []string {
	if id.TLS == nil || id.PeerTrusted && id.Client != id.Peer {
		return nil
	}
	return id.TLS.Names
}

// ParseIdentity reads one trusted identity as config writes it: a URI
// ("spiffe://cluster/ns/ops/sa/deploy", or "uri:" and the URI), "dns:NAME"
// or "cn:NAME", and returns its canonical form.
func ParseIdentity(s string) (string, error) {
	s = strings.TrimSpace(s)
	kind, v, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "dns" && v != "" && !strings.ContainsAny(v, " /"):
		return "dns:" + strings.ToLower(v), nil
	case ok && kind == "cn" && v != "":
		return s, nil
	case ok && kind == "uri" && strings.Contains(v, "://"):
		return s, nil
	case strings.Contains(s, "://") && !strings.ContainsAny(s, " "):
		return "uri:" + s, nil
	}
	return "", fmt.Errorf("invalid identity %q: want a URI (spiffe://...), dns:NAME or cn:NAME", s)
}

// Identities is a parsed list of trusted certificate identities.
type Identities []string

// ParseIdentities parses every entry; the error names the first bad one.
func ParseIdentities(list []string) (Identities, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(Identities, 0, len(list))
	for i, s := range list {
		v, err := ParseIdentity(s)
		if err != nil {
			return nil, &EntryError{Index: i, Err: err}
		}
		out = append(out, v)
	}
	return out, nil
}

// ValidateIdentities reports every bad entry of list as "path[i]: reason".
func ValidateIdentities(path string, list []string, report func(keyPath, msg string)) {
	for i, s := range list {
		if _, err := ParseIdentity(s); err != nil {
			report(fmt.Sprintf("%s[%d]", path, i), err.Error())
		}
	}
}

// Matches reports whether one of names is in the list.
func (ids Identities) Matches(names []string) bool {
	for _, n := range names {
		for _, t := range ids {
			if n == t {
				return true
			}
		}
	}
	return false
}

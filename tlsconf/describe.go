package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
)

// Describe names a TLS failure in plain words for a log line or an error
// reason: "certificate signed by unknown authority", "certificate name
// mismatch", "certificate expired or not yet valid", an alert the peer
// sent, or the error itself.
func Describe(err error) string {
	var (
		unknown   x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		recHeader tls.RecordHeaderError
		ne        net.Error
	)
	switch {
	case errors.As(err, &unknown):
		return "certificate signed by unknown authority"
	case errors.As(err, &hostname):
		return "certificate name mismatch: " + hostname.Error()
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "certificate expired or not yet valid: " + invalid.Error()
		}
		return "invalid certificate: " + invalid.Error()
	case errors.As(err, &verify):
		return "certificate verification failed: " + verify.Err.Error()
	case errors.As(err, &alert):
		return "the peer refused the handshake: " + strings.TrimPrefix(alert.Error(), "tls: ")
	case err != nil && strings.Contains(err.Error(), "remote error: tls: "):
		// An alert the peer sent arrives as an unexported type.
		_, a, _ := strings.Cut(err.Error(), "remote error: tls: ")
		return "the peer refused the handshake: " + a
	case errors.As(err, &recHeader):
		return "the peer does not speak TLS"
	case errors.As(err, &ne) && ne.Timeout():
		return "handshake timed out"
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

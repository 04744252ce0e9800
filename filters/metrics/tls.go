package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TLSState is what the TLS listener reports at scrape time.
type TLSState struct {
	// HandshakeErrors counts failed client handshakes.
	HandshakeErrors uint64
	// CertReloadErrors counts certificate, key or CA files a reload found
	// bad (the previous version was kept).
	CertReloadErrors uint64
	// Certificates are the server certificates being served.
	Certificates []TLSCertificate
}

// TLSCertificate is one served certificate: its name (the configured
// cert_file) and expiry.
type TLSCertificate struct {
	Name     string
	NotAfter time.Time
}

var (
	tlsHandshakeErrorsDesc = prometheus.NewDesc(Namespace+"_tls_handshake_errors_total",
		"Client TLS handshakes that failed (no common version or cipher, client certificate refused, plain HTTP on the TLS port, timeout).", nil, nil)
	tlsReloadErrorsDesc = prometheus.NewDesc(Namespace+"_tls_cert_reload_errors_total",
		"Certificate, key or CA bundle files a reload found bad; the previous version stays in use.", nil, nil)
	tlsNotAfterDesc = prometheus.NewDesc(Namespace+"_tls_cert_not_after_seconds",
		"Expiry of each served certificate (Unix seconds), by its cert_file.", []string{"name"}, nil)
)

// RegisterTLS adds the TLS listener's metrics, read from fn at scrape
// time. Call it once, when the TLS listener starts.
func (m *Metrics) RegisterTLS(fn func() TLSState) {
	m.reg.MustRegister(tlsCollector(fn))
}

type tlsCollector func() TLSState

func (c tlsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tlsHandshakeErrorsDesc
	ch <- tlsReloadErrorsDesc
	ch <- tlsNotAfterDesc
}

func (c tlsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c()
	ch <- prometheus.MustNewConstMetric(tlsHandshakeErrorsDesc, prometheus.CounterValue, float64(st.HandshakeErrors))
	ch <- prometheus.MustNewConstMetric(tlsReloadErrorsDesc, prometheus.CounterValue, float64(st.CertReloadErrors))
	seen := map[string]bool{}
	for _, cert := range st.Certificates {
		if seen[cert.Name] {
			continue
		}
		seen[cert.Name] = true
		ch <- prometheus.MustNewConstMetric(tlsNotAfterDesc, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), cert.Name)
	}
}

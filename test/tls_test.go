package test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters/accesslog"
	"github.com/floodgate-dev/floodgate/filters/metrics"
	"github.com/floodgate-dev/floodgate/filters/shed"
	"github.com/floodgate-dev/floodgate/internal/syncbuf"
	"github.com/floodgate-dev/floodgate/internal/testpki"
	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/proxy"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// tlsGateway is a gateway in the test process serving TLS the way
// cmd/gateway does (proxy.Server.ServeTLS over a tlsconf.Store that
// watches its files), with the https redirect listener when configured
// and the access log captured.
type tlsGateway struct {
	addr, redirectAddr string
	server             *proxy.Server
	store              *tlsconf.Store
	log                *syncbuf.Buffer
	outputs            *accesslog.Outputs
}

func startTLSGateway(t *testing.T, yaml string) *tlsGateway {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := proxy.NewBuilder(logger)
	reg, err := origins.NewRegistry(cfg.Origins, origins.Options{Logger: logger})
	if err != nil {
		t.Fatalf("origins: %v", err)
	}
	reg.Subscribe(b.DrainRemoved)
	shedder, err := loadshed.New(cfg.LoadShed)
	if err != nil {
		t.Fatalf("loadshed: %v", err)
	}
	m := metrics.New()
	g := &tlsGateway{log: &syncbuf.Buffer{}}
	g.outputs = accesslog.NewOutputs(g.log, io.Discard)
	proxy.OriginsKey.Provide(b.Services, reg)
	proxy.ObserverKey.Provide(b.Services, m)
	shed.ShedderKey.Provide(b.Services, shedder)
	metrics.ServiceKey.Provide(b.Services, m)
	accesslog.OutputsKey.Provide(b.Services, g.outputs)
	snap, err := b.Build(cfg)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	g.server = proxy.NewServer(b, snap, logger)
	g.store, err = tlsconf.NewStore(cfg.Server.TLS, logger)
	if err != nil {
		t.Fatalf("certificates: %v", err)
	}
	if err := g.store.Watch(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = g.server.ServeTLS(ln, g.store)
	}()
	if r := cfg.Server.TLS.Redirect; r.Listen != "" {
		rln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g.redirectAddr = rln.Addr().String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = g.server.ServeRedirect(rln, proxy.RedirectPort(r, cfg.Server.Listen))
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.server.Shutdown(ctx)
		wg.Wait()
		g.store.Close()
		reg.Close()
		shedder.Close()
		_ = g.outputs.Close()
		b.Close()
	})
	return g
}

// accessLine waits for the access-log line whose path is path and returns
// it (lines are written when a response completes, a moment after the
// client has read it).
func (g *tlsGateway) accessLine(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.outputs.Flush()
		for _, line := range strings.Split(g.log.String(), "\n") {
			if strings.Contains(line, `"path":"`+path+`"`) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for %s in:\n%s", path, g.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsPKI is a private CA with certificate files in a temporary directory.
type tlsPKI struct {
	ca  *testpki.CA
	dir string
}

func newTLSPKI(t *testing.T, name string) *tlsPKI {
	return &tlsPKI{ca: testpki.NewCA(t, name), dir: t.TempDir()}
}

func (p *tlsPKI) files(t *testing.T, file string, o testpki.LeafOptions) (string, string) {
	return p.ca.Issue(t, o).Write(t, p.dir, file)
}

// httpsClient trusts ca, sends SNI name, and presents cert when given.
func httpsClient(t *testing.T, ca *testpki.CA, name string, cert *testpki.Leaf, keepAlive bool) *http.Client {
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: name}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func httpsGet(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// The TLS edge end to end: SNI picks the certificate, X-Forwarded-Proto is
// https, HSTS is added over TLS, the access log records version, SNI and
// the client certificate, a verified client identity is a trust source for
// the priority header (and an untrusted one is not), plain HTTP on the TLS
// port is told to use https, and the redirect listener sends clients there.
func TestTLSEdge(t *testing.T) {
	p := newTLSPKI(t, "edge CA")
	apiCert, apiKey := p.files(t, "api", testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}})
	wildCert, wildKey := p.files(t, "apps", testpki.LeafOptions{CommonName: "apps", DNS: []string{"*.apps.test"}})
	clientCA := testpki.NewCA(t, "client CA")
	clientCAFile := clientCA.WriteCA(t, p.dir, "client-ca")
	ops := clientCA.Issue(t, testpki.LeafOptions{CommonName: "deploy", URIs: []string{"spiffe://prod/ops"}, Client: true})
	web := clientCA.Issue(t, testpki.LeafOptions{CommonName: "frontend", URIs: []string{"spiffe://prod/web"}, Client: true})
	o := startOrigin(t, echoHandler)

	g := startTLSGateway(t, fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tls:
    certificates:
      - {cert_file: %q, key_file: %q, default: true}
      - {cert_file: %q, key_file: %q}
    client_auth: optional
    client_ca_file: %q
    hsts: {max_age: 8760h, include_subdomains: true}
    redirect: {listen: "127.0.0.1:0", https_port: 8443}
origins:
  backend: {instances: [{address: %q}]}
routes:
  - {name: health, match: {path: /healthz}, static: {status: 200, body: ok}}
  - {name: backend, match: {path_prefix: /o}, rewrite: {strip_prefix: /o}, origin: backend}
loadshed:
  scoring:
    default_score: 50
    priority_header: {name: X-Priority, trusted_identities: ["spiffe://prod/ops"]}
`, apiCert, apiKey, wildCert, wildKey, clientCAFile, o.addr))
	url := "https://" + g.addr

	t.Run("SNI, forwarding, HSTS, access log", func(t *testing.T) {
		resp, body := httpsGet(t, httpsClient(t, p.ca, "api.test", nil, true), url+"/o/plain")
		if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].Subject.CommonName != "api" {
			t.Fatalf("status %d, certificate %q", resp.StatusCode, resp.TLS.PeerCertificates[0].Subject.CommonName)
		}
		if e := decodeEcho(t, body); strings.Join(e.header("X-Forwarded-Proto"), ",") != "https" {
			t.Errorf("X-Forwarded-Proto %v, want https", e.header("X-Forwarded-Proto"))
		}
		if h := resp.Header.Get("Strict-Transport-Security"); h != "max-age=31536000; includeSubDomains" {
			t.Errorf("HSTS %q", h)
		}
		line := g.accessLine(t, "/o/plain")
		for _, want := range []string{`"tls_version":"1.3"`, `"sni":"api.test"`} {
			if !strings.Contains(line, want) {
				t.Errorf("access log lacks %s: %s", want, line)
			}
		}
		if strings.Contains(line, "client_cert") {
			t.Errorf("a client without a certificate logged one: %s", line)
		}
		resp, _ = httpsGet(t, httpsClient(t, p.ca, "shop.apps.test", nil, false), url+"/healthz")
		if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].Subject.CommonName != "apps" {
			t.Fatalf("wildcard: status %d, certificate %q", resp.StatusCode, resp.TLS.PeerCertificates[0].Subject.CommonName)
		}
	})

	t.Run("client identity is a trust source for the priority header", func(t *testing.T) {
		cases := []struct {
			name    string
			cert    *testpki.Leaf
			trusted bool
		}{
			{"trusted", ops, true},
			{"untrusted", web, false},
			{"no-certificate", nil, false},
		}
		for _, c := range cases {
			path := "/o/priority-" + c.name
			resp, body := httpsGet(t, httpsClient(t, p.ca, "api.test", c.cert, false), url+path, "X-Priority", "3")
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d", c.name, resp.StatusCode)
			}
			forwarded := decodeEcho(t, body).header("X-Priority")
			line := g.accessLine(t, path)
			if c.trusted {
				if len(forwarded) != 1 || !strings.Contains(line, `"priority":3`) || !strings.Contains(line, `"client_cert":"uri:spiffe://prod/ops"`) {
					t.Errorf("%s: forwarded X-Priority %v, log %s", c.name, forwarded, line)
				}
				continue
			}
			if len(forwarded) != 0 || !strings.Contains(line, `"priority":50`) {
				t.Errorf("%s: the header was honoured or forwarded (%v): %s", c.name, forwarded, line)
			}
		}
	})

	t.Run("a client certificate from another CA is refused", func(t *testing.T) {
		stranger := testpki.NewCA(t, "other").Issue(t, testpki.LeafOptions{CommonName: "x", Client: true})
		before := g.server.TLSHandshakeErrors()
		cfg := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger.TLS, nil }}
		tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		if resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			t.Fatalf("served %d to a certificate from an unknown CA", resp.StatusCode)
		}
		waitUntil(t, "the failed handshake to be counted", func() bool { return g.server.TLSHandshakeErrors() > before })
	})

	t.Run("plain HTTP on the TLS port", func(t *testing.T) {
		resp, body := raw(t, g.addr, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(body, "use https://") || resp.Header.Get("X-Floodgate-Status") != "client_error" {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
	})

	t.Run("redirect listener", func(t *testing.T) {
		resp, _ := raw(t, g.redirectAddr, "GET /a/b?c=d&e HTTP/1.1\r\nHost: api.test:8080\r\n\r\n")
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://api.test:8443/a/b?c=d&e" {
			t.Errorf("GET: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Error("HSTS sent over plain HTTP")
		}
		resp, _ = raw(t, g.redirectAddr, "POST /form HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\nContent-Length: 2\r\n\r\nab")
		if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://[2001:db8::1]:8443/form" {
			t.Errorf("POST: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = raw(t, g.redirectAddr, "GET http://shop.apps.test/x HTTP/1.1\r\nHost: ignored.test\r\n\r\n")
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://shop.apps.test:8443/x" {
			t.Errorf("absolute form: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, body := raw(t, g.redirectAddr, "GET / HTTP/1.1\r\nHost: evil.test/\r\n\r\n")
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("bad Host: %d %q Location %q", resp.StatusCode, body, resp.Header.Get("Location"))
		}
		if line := g.accessLine(t, "/form"); !strings.Contains(line, `"status":308`) {
			t.Errorf("redirect not logged: %s", line)
		}
	})
}

// waitUntil polls a condition another goroutine makes true.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Certificates are rewritten while clients keep sending: a client opening
// a new connection per request and clients holding keep-alive connections
// opened before the first rewrite. No request fails, open connections are
// not dropped, and new connections see each new certificate.
func TestTLSCertificateReloadUnderLiveTraffic(t *testing.T) {
	p := newTLSPKI(t, "reload CA")
	leaf := p.ca.Issue(t, testpki.LeafOptions{CommonName: "api", DNS: []string{"api.test"}})
	certFile, keyFile := leaf.Write(t, p.dir, "api")
	g := startTLSGateway(t, fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tls:
    certificates: [{cert_file: %q, key_file: %q}]
routes:
  - {name: ok, match: {path_prefix: /}, static: {status: 200, body: ok}}
# The clients below handshake back to back, which saturates the gateway's
# CPU (under -race above all), and its CPU signal would then rightly shed
# default-score requests within a second (the starvation controller's
# onset). This test is about certificate reloads; shedding under CPU
# overload has its own tests and experiments.
loadshed: {global: {signals: {cpu: {enabled: false}}}}
`, certFile, keyFile))

	var sent, failed atomic.Int64
	// The first failure, whatever its concrete type (an atomic.Value
	// panics when two different error types are stored in it).
	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// New connection per request: every one is a fresh handshake.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpsClient(t, p.ca, "api.test", nil, false)
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("https://" + g.addr + "/new")
				sent.Add(1)
				if err != nil {
					fail(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fail(fmt.Errorf("status %d", resp.StatusCode))
				}
			}
		}()
	}
	// Keep-alive connections opened before any rewrite, used throughout.
	for range 2 {
		conn, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			br := bufio.NewReader(conn)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				sent.Add(1)
				if _, err := io.WriteString(conn, "GET /kept HTTP/1.1\r\nHost: api.test\r\n\r\n"); err != nil {
					fail(fmt.Errorf("kept connection: %w", err))
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					fail(fmt.Errorf("kept connection: %w", err))
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					fail(fmt.Errorf("kept connection: status %d (%s): %s", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), bytes.TrimSpace(body)))
				}
			}
		}()
	}

	probe := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "api.test"}
	for i := range 4 {
		fresh := p.ca.Issue(t, testpki.LeafOptions{CommonName: fmt.Sprintf("api-%d", i), DNS: []string{"api.test"}})
		// Certificate first, key second, as a renewal job writes them: a
		// reload between the two sees a mismatch and keeps the old pair.
		testpki.WriteFile(t, certFile, fresh.CertPEM)
		testpki.WriteFile(t, keyFile, fresh.KeyPEM)
		waitUntil(t, "new connections to get certificate "+fresh.Cert.Subject.CommonName, func() bool {
			c, err := tls.Dial("tcp", g.addr, probe)
			if err != nil {
				fail(fmt.Errorf("probe: %w", err))
				return false
			}
			defer c.Close()
			return c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(fresh.Cert.SerialNumber) == 0
		})
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", n, sent.Load(), *firstErr.Load())
	}
	if sent.Load() < 20 {
		t.Fatalf("only %d requests were sent during the reloads", sent.Load())
	}
	if got := g.store.Certificates(); len(got) != 1 || got[0].Name != certFile {
		t.Fatalf("certificates %v", got)
	}
	t.Logf("%d requests during 4 reloads, none failed (reload errors: %d)", sent.Load(), g.store.ReloadErrors())
}

// startTLSOrigin is a real fasthttp origin behind TLS with leaf's
// certificate; clientCAs, when set, makes it require a client certificate.
func startTLSOrigin(t *testing.T, h fasthttp.RequestHandler, leaf *testpki.Leaf, clientCA *testpki.CA) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, clientCA.Pool()
	}
	srv := &fasthttp.Server{Handler: h, Logger: quietFastHTTP{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, cfg))
	}()
	t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	return ln.Addr().String()
}

type quietFastHTTP struct{}

func (quietFastHTTP) Printf(string, ...any) {}

// Origin TLS: a private CA and the right server name work (with a client
// certificate for an origin that requires one); a wrong server name, an
// unknown authority and an expired certificate are 502 origin_connect_error
// whose reason names the TLS failure.
func TestOriginTLS(t *testing.T) {
	p := newTLSPKI(t, "origin CA")
	caFile := p.ca.WriteCA(t, p.dir, "origin-ca")
	gwClientCA := testpki.NewCA(t, "gateway client CA")
	gwCert, gwKey := gwClientCA.Issue(t, testpki.LeafOptions{CommonName: "gateway", Client: true}).Write(t, p.dir, "gateway")
	originLeaf := p.ca.Issue(t, testpki.LeafOptions{CommonName: "origin", DNS: []string{"origin.internal"}})
	expiredLeaf := p.ca.Issue(t, testpki.LeafOptions{CommonName: "old", DNS: []string{"origin.internal"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	good := startTLSOrigin(t, echoHandler, originLeaf, gwClientCA)
	expired := startTLSOrigin(t, echoHandler, expiredLeaf, nil)
	edge := newTLSPKI(t, "edge CA")
	ec, ek := edge.files(t, "edge", testpki.LeafOptions{CommonName: "edge", DNS: []string{"edge.test"}})

	origin := func(name, addr, tlsBlock string) string {
		return fmt.Sprintf(`
  %s:
    instances: [{address: %q}]
    timeouts: {connect: 2s, response: 2s}
    retry: {attempts: 1}
    tls: %s`, name, addr, tlsBlock)
	}
	yaml := fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  tls:
    certificates: [{cert_file: %q, key_file: %q}]
origins:`, ec, ek) +
		origin("good", good, fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.internal, cert_file: %q, key_file: %q}", caFile, gwCert, gwKey)) +
		origin("wrongname", good, fmt.Sprintf("{enabled: true, ca_file: %q, server_name: other.internal, cert_file: %q, key_file: %q}", caFile, gwCert, gwKey)) +
		origin("unknownca", good, "{enabled: true, server_name: origin.internal}") +
		origin("expired", expired, fmt.Sprintf("{enabled: true, ca_file: %q, server_name: origin.internal}", caFile)) + `
routes:` + func() string {
		var b strings.Builder
		for _, n := range []string{"good", "wrongname", "unknownca", "expired"} {
			fmt.Fprintf(&b, "\n  - {name: %s, match: {path_prefix: /%s}, origin: %s}", n, n, n)
		}
		return b.String()
	}()
	g := startTLSGateway(t, yaml)
	c := httpsClient(t, edge.ca, "edge.test", nil, true)

	resp, body := httpsGet(t, c, "https://"+g.addr+"/good/x")
	if resp.StatusCode != 200 || decodeEcho(t, body).RequestURI != "/good/x" {
		t.Fatalf("private CA with a client certificate: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ path, reason string }{
		{"/wrongname", "TLS handshake with origin wrongname failed: certificate name mismatch"},
		{"/unknownca", "TLS handshake with origin unknownca failed: certificate signed by unknown authority"},
		{"/expired", "TLS handshake with origin expired failed: certificate expired or not yet valid"},
	} {
		resp, body := httpsGet(t, c, "https://"+g.addr+tc.path)
		if resp.StatusCode != 502 || resp.Header.Get("X-Floodgate-Status") != "origin_connect_error" || !strings.Contains(body, tc.reason) {
			t.Errorf("%s: %d %s %q, want 502 origin_connect_error %q", tc.path, resp.StatusCode, resp.Header.Get("X-Floodgate-Status"), body, tc.reason)
		}
	}
}

// Health checks speak TLS with the origin's settings: a TLS origin that
// only answers over TLS sees the checks arrive.
func TestOriginTLSHealthChecks(t *testing.T) {
	p := newTLSPKI(t, "origin CA")
	caFile := p.ca.WriteCA(t, p.dir, "ca")
	checked := make(chan string, 16)
	addr := startTLSOrigin(t, func(ctx *fasthttp.RequestCtx) {
		select {
		case checked <- string(ctx.Path()) + " " + string(ctx.Request.Header.UserAgent()):
		default:
		}
	}, p.ca.Issue(t, testpki.LeafOptions{CommonName: "origin", DNS: []string{"origin.internal"}}), nil)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
origins:
  api:
    instances: [{address: %q}]
    health_check: {interval: 50ms, path: /healthz}
    tls: {enabled: true, ca_file: %q, server_name: origin.internal}
routes:
  - {name: api, match: {path_prefix: /}, origin: api}
`, addr, filepath.Clean(caFile))), "test")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := origins.NewRegistry(cfg.Origins, origins.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	select {
	case got := <-checked:
		if got != "/healthz floodgate-health-check" {
			t.Fatalf("origin saw %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no health check reached the TLS origin")
	}
}

package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters/accesslog"
	"github.com/floodgate-dev/floodgate/filters/metrics"
	"github.com/floodgate-dev/floodgate/filters/shed"
	"github.com/floodgate-dev/floodgate/internal/leaktest"
	"github.com/floodgate-dev/floodgate/loadshed"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/proxy"
)

// gatewayBin and timeseriesBin are built once for process-level tests.
var gatewayBin, timeseriesBin, loadgenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "floodgate-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBin = filepath.Join(dir, "gateway")
	timeseriesBin = filepath.Join(dir, "timeseries")
	loadgenBin = filepath.Join(dir, "loadgen")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/gateway", "./cmd/timeseries", "./cmd/loadgen")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := leaktest.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// origin is a real fasthttp server on loopback.
type origin struct {
	addr string
	srv  *fasthttp.Server
}

func startOrigin(t *testing.T, h fasthttp.RequestHandler, tune ...func(*fasthttp.Server)) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler:                       h,
		DisableHeaderNamesNormalizing: true,
		StreamRequestBody:             true,
		MaxRequestBodySize:            1 << 30,
	}
	for _, f := range tune {
		f(srv)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return &origin{addr: ln.Addr().String(), srv: srv}
}

// inproc is a gateway running in the test process, so the race detector
// sees the proxy's code paths.
type inproc struct {
	addr   string
	server *proxy.Server
	b      *proxy.Builder
	reg    *origins.Registry
	m      *metrics.Metrics
}

func startGateway(t *testing.T, yaml string) *inproc {
	t.Helper()
	return startGatewayObserved(t, yaml, origins.Hooks{})
}

// startGatewayObserved is startGateway with origins hooks, so a test can
// await breaker transitions as events instead of polling for them.
func startGatewayObserved(t *testing.T, yaml string, hooks origins.Hooks) *inproc {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := proxy.NewBuilder(logger)
	reg, err := origins.NewRegistry(cfg.Origins, origins.Options{Logger: logger, Hooks: hooks})
	if err != nil {
		t.Fatalf("origins: %v", err)
	}
	if err := reg.SetGroups(cfg.OriginGroups); err != nil {
		t.Fatalf("origin groups: %v", err)
	}
	reg.Subscribe(b.DrainRemoved)
	// The services the built-in filters and endpoint kinds look up, as
	// cmd/gateway provides them; the access log goes nowhere.
	shedder, err := loadshed.New(cfg.LoadShed)
	if err != nil {
		t.Fatalf("loadshed: %v", err)
	}
	m := metrics.New()
	proxy.OriginsKey.Provide(b.Services, reg)
	proxy.ObserverKey.Provide(b.Services, m)
	proxy.TunnelObserverKey.Provide(b.Services, m)
	proxy.ShadowObserverKey.Provide(b.Services, m)
	shed.ShedderKey.Provide(b.Services, shedder)
	metrics.ServiceKey.Provide(b.Services, m)
	outputs := accesslog.NewOutputs(io.Discard, io.Discard)
	accesslog.OutputsKey.Provide(b.Services, outputs)
	// Shedding is off unless the test's YAML says otherwise: these tests
	// measure origin selection, retries and hedging, which shedding on the
	// origin's error rate would mask; shedding is tested end to end on the
	// real process (shedding_test.go).
	off := false
	for _, name := range []string{shed.GlobalFilterName, shed.OriginFilterName} {
		if _, set := cfg.Builtins[name]; !set {
			if cfg.Builtins == nil {
				cfg.Builtins = map[string]config.BuiltinFilter{}
			}
			cfg.Builtins[name] = config.BuiltinFilter{Enabled: &off}
		}
	}
	snap, err := b.Build(cfg)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	srv := proxy.NewServer(b, snap, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		reg.Close()
		shedder.Close()
		_ = outputs.Close()
		b.Close()
	})
	return &inproc{addr: ln.Addr().String(), server: srv, b: b, reg: reg, m: m}
}

// baseConfig is a config with one origin route (/o/* -> origin, prefix
// stripped) and a static health route.
func baseConfig(originAddr string, extra string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  read_header_timeout: 2s
  max_body_size: 1MiB
admin:
  listen: "127.0.0.1:0"
origins:
  backend:
    instances:
      - address: %q
    timeouts:
      connect: 500ms
      response: 2s
routes:
  - name: health
    match: {path: /healthz}
    static: {status: 200, body: ok}
  - name: backend
    match: {path_prefix: /o}
    rewrite: {strip_prefix: /o}
    origin: backend
%s`, originAddr, extra)
}

// httpClient returns a client whose connections are closed when the test
// ends, so goroutine leak checks stay meaningful.
func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// raw sends a raw HTTP/1.1 request and reads one response.
func raw(t *testing.T, addr, request string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Write concurrently: the gateway may answer (413, 400) before reading
	// the whole request, and then stops reading it.
	go func() { _, _ = io.WriteString(conn, request) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// echoed is what the echo origin reports about the request it received.
type echoed struct {
	Method     string      `json:"method"`
	RequestURI string      `json:"requestURI"`
	Headers    [][2]string `json:"headers"`
	BodyLen    int64       `json:"bodyLen"`
	Body       string      `json:"body,omitempty"`
}

func (e echoed) header(name string) []string {
	var out []string
	for _, h := range e.Headers {
		if strings.EqualFold(h[0], name) {
			out = append(out, h[1])
		}
	}
	return out
}

// echoHandler reports the request line, headers (in order, names as
// received) and body size.
func echoHandler(ctx *fasthttp.RequestCtx) {
	var e echoed
	e.Method = string(ctx.Method())
	e.RequestURI = string(ctx.Request.Header.RequestURI())
	for k, v := range ctx.Request.Header.All() {
		e.Headers = append(e.Headers, [2]string{string(k), string(v)})
	}
	// A request without a body (a GET, which the gateway forwards without
	// an invented Content-Length: 0) has no body stream.
	if body := ctx.RequestBodyStream(); body != nil {
		e.BodyLen, _ = io.Copy(io.Discard, body)
	}
	ctx.SetContentType("application/json")
	_ = json.NewEncoder(ctx).Encode(e)
}

func decodeEcho(t *testing.T, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("origin echo: %v in %q", err, body)
	}
	return e
}

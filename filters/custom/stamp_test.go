package custom_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/floodgate-dev/floodgate/config"
	_ "github.com/floodgate-dev/floodgate/filters/custom"
	"github.com/floodgate-dev/floodgate/internal/leaktest"
	"github.com/floodgate-dev/floodgate/proxy"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func build(t *testing.T, yaml string) (*proxy.Snapshot, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test")
	if err != nil {
		t.Fatal(err)
	}
	b := proxy.NewBuilder(slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(b.Close)
	return b.Build(cfg)
}

// TestStampPickedUpByNameFromYAML is the README's promise: a filter in this
// package is configured by name with typed options, and bad options fail
// config load with the key path.
func TestStampPickedUpByNameFromYAML(t *testing.T) {
	snap, err := build(t, `
routes:
  - name: hello
    match: {path: /hello}
    static: {status: 200, body: hi}
    filters:
      - name: stamp
        options: {header: X-Team, value: edge}
`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range snap.Chains[0].Filters() {
		names = append(names, f.Name())
	}
	if strings.Join(names, ",") != "stamp,static" {
		t.Fatalf("chain = %v", names)
	}

	// Served for real: the header shows up on the response.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := proxy.NewBuilder(logger)
	defer b.Close()
	srv := proxy.NewServer(b, snap, logger)
	ln := fasthttputil.NewInmemoryListener()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	status, body, err := client.Get(nil, "http://gw/hello")
	var resp fasthttp.Response
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://gw/hello")
	if err := client.Do(req, &resp); err != nil {
		t.Fatal(err)
	}
	fasthttp.ReleaseRequest(req)
	if err != nil || status != 200 || string(body) != "hi" || string(resp.Header.Peek("X-Team")) != "edge" {
		t.Fatalf("GET /hello: %d %q %v, X-Team=%q", status, body, err, resp.Header.Peek("X-Team"))
	}
	client.CloseIdleConnections()
	_ = srv.Shutdown(context.Background())
	<-done

	_, err = build(t, `
routes:
  - name: hello
    match: {path: /hello}
    static: {status: 200}
    filters:
      - name: stamp
        options: {value: edge, colour: blue}
`)
	if err == nil || !strings.Contains(err.Error(), "routes[0].filters[0].options") || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown option must fail with its key path, got %v", err)
	}
	_, err = build(t, `
routes:
  - name: hello
    match: {path: /hello}
    static: {status: 200}
    filters:
      - name: stamp
        options: {header: ""}
`)
	if err == nil || !strings.Contains(err.Error(), "routes[0].filters[0].options.header: required") {
		t.Fatalf("validation error must carry the key path, got %v", err)
	}
}

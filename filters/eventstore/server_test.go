package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/floodgate-dev/floodgate/timeseries/httpapi"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/internal/chaintest"
	"github.com/floodgate-dev/floodgate/timeseries"
)

// testConfig is the demo config plus "tiny" (an async queue of two events
// that holds them for the longest allowed coalesce window, so a third is
// refused deterministically) and "secret" (outside the test allowlist).
func testConfig() timeseries.Config {
	cfg := timeseries.DemoConfig()
	_, demo := timeseries.DemoNamespace()
	tiny := demo
	tiny.QueueBuffering = timeseries.QueueBuffering{Coalesce: time.Minute, BufferCapacity: 2, MaxBatchEvents: 1000}
	cfg.Namespaces["tiny"] = tiny
	cfg.Namespaces["secret"] = demo
	return cfg
}

// openStore opens a real store in a temporary directory, closed (queues
// flushed) when the test ends.
func openStore(t *testing.T) *timeseries.Service {
	t.Helper()
	svc, err := timeseries.Open(t.TempDir(), testConfig(), timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return svc
}

// serve runs chain on a real fasthttp server on 127.0.0.1, with a handler
// doing what the gateway's driver does around a chain. streaming selects
// the gateway's mode (bodies streamed, 1 KiB read ahead) or fasthttp's
// default (bodies fully buffered).
func serve(t *testing.T, chain *filters.Chain, streaming bool) string {
	t.Helper()
	return serveTimeout(t, chain, streaming, 5*time.Second)
}

// serveTimeout is serve with the connection read deadline, which with
// streaming also bounds reading the body inside the endpoint.
func serveTimeout(t *testing.T, chain *filters.Chain, streaming bool, readTimeout time.Duration) string {
	t.Helper()
	return chaintest.Serve(t, chain, chaintest.Options{Tune: func(srv *fasthttp.Server) {
		srv.StreamRequestBody = streaming
		srv.ReadTimeout = readTimeout
		if streaming {
			srv.MaxRequestBodySize = 1 << 10
		}
	}})
}

// gateway builds the one-endpoint chain over a fresh store and serves it.
func gateway(t *testing.T, opts Options, streaming bool) (string, *timeseries.Service) {
	t.Helper()
	svc := openStore(t)
	chain, err := filters.NewChainBuilder().Build([]filters.Filter{New(svc, opts)})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, chain, streaming), svc
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) category() string { return r.header.Get(filters.StatusHeader) }

// errorJSON decodes the common error shape.
func (r reply) errorJSON(t *testing.T) httpapi.ErrorBody {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var b httpapi.ErrorBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if b.Error == "" {
		t.Errorf("error body %s has no error message", r.body)
	}
	return b
}

func do(t *testing.T, cl *http.Client, method, url string, body io.Reader) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func post(t *testing.T, cl *http.Client, url string, v any) reply {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, cl, http.MethodPost, url, bytes.NewReader(b))
}

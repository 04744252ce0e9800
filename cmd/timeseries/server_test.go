package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
)

func TestServerRoutesMethodsAndRetryAfter(t *testing.T) {
	cfg := timeseries.DemoConfig()
	ns := cfg.Namespaces["demo"]
	ns.QueueBuffering.BufferCapacity = 1
	ns.QueueBuffering.Coalesce = time.Minute
	cfg.Namespaces["demo"] = ns
	svc, err := timeseries.Open(t.TempDir(), cfg, timeseries.WithoutRetentionLoop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(svc, "/ts/", log.New(io.Discard, "", 0))
	srv.MaxIdleWorkerDuration = 50 * time.Millisecond // lets the worker-pool cleaner exit promptly
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Shutdown()
		<-done
		_ = svc.Close(context.Background())
	}()
	client := newClient()
	defer client.CloseIdleConnections()
	addr := ln.Addr().String()

	do := func(method, path, body string) (int, http.Header, []byte) {
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	if st, _, _ := do("GET", "/ts/ReadEventRecords", ""); st != 405 {
		t.Fatalf("GET: %d, want 405", st)
	}
	if st, _, _ := do("POST", "/ts/Nope", "{}"); st != 404 {
		t.Fatalf("unknown op: %d, want 404", st)
	}
	if st, _, _ := do("GET", "/healthz", ""); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
	body, _ := json.Marshal(timeseries.WriteRequest{Namespace: "demo", Events: []timeseries.EventRecord{event("d", "1", time.Now())}})
	if st, _, b := do("POST", "/ts/WriteEventRecords", string(body)); st != 202 {
		t.Fatalf("async write: %d %s", st, b)
	}
	st, h, b := do("POST", "/ts/WriteEventRecords", string(body))
	if st != 503 || h.Get("Retry-After") != "1" {
		t.Fatalf("full queue: %d Retry-After=%q %s", st, h.Get("Retry-After"), b)
	}
}

package fuzz

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEndsHeadEarly(t *testing.T) {
	for head, want := range map[string]bool{
		"GET / HTTP/1.1\r\nHost: h":                 false,
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n":         false, // trailing blank lines are trimmed, not a second request
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /x":   true,
		"GET / HTTP/1.1\nHost: h\n\nGET /x":         true,
		"T / HTTP/1.1\nHost: h\n\r\n0":              true, // the shape behind the unmarked "T /" finding
		"GET / HTTP/1.1\r\nHost: h\r\n\r\r\nX: y":   true,
		"GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: h":   false,
		"GET / HTTP/1.1\r\nHost: h\rX: y\r\nZ: 1\r": false,
	} {
		if got := endsHeadEarly(head); got != want {
			t.Errorf("endsHeadEarly(%q) = %v, want %v", head, got, want)
		}
	}
}

// TestOriginChargesArrivalsToCurrentInput: a request that reaches the origin
// after the client is done is still found by waitIdle and reported with its
// raw bytes, and the next input starts clean (the old harness kept findings
// forever, so every later input failed too and minimized to noise).
func TestOriginChargesArrivalsToCurrentInput(t *testing.T) {
	o := startStrictOrigin(t)
	always := func() bool { return true }

	c, err := net.Dial("tcp", o.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The connection is accepted first, as behind the gateway (see idle).
	for registered := false; !registered; {
		o.mu.Lock()
		registered = len(o.conns) == 1
		o.mu.Unlock()
		runtime.Gosched()
	}
	const unmarked = "T / HTTP/1.1\r\nHost: h\r\n\r\n"
	if _, err := io.WriteString(c, unmarked); err != nil {
		t.Fatal(err)
	}
	// No response is awaited: waitIdle alone must see the bytes consumed.
	o.waitIdle(t, always)
	err = o.findings()
	if err == nil || !strings.Contains(err.Error(), `["conn 1: T /"]`) || !strings.Contains(err.Error(), `"T / HTTP/1.1\r\nHost: h\r\n\r\n"`) {
		t.Fatalf("findings = %v, want the unmarked request with its raw bytes", err)
	}

	o.reset()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n"+markerHeader+": 7\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	o.waitIdle(t, always)
	if err := o.findings(); err != nil {
		t.Fatalf("a marked request after reset: %v", err)
	}
}

// TestHeadEndingEarlyIsTwoClientRequests pins down the unmarked "T /"
// finding: a head with "\n\r\n" ends there for fasthttp and net/http alike,
// so the client sent two requests and the gateway forwarded the first one
// as framed; it answers both, so this is no desync.
func TestHeadEndingEarlyIsTwoClientRequests(t *testing.T) {
	o := startStrictOrigin(t)
	var panics atomic.Int64
	addr, srv := startGateway(t, o.ln.Addr().String(), &panics)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "T / HTTP/1.1\nHost: h\n\r\n0\r\n"+markerHeader+": 1\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var statuses []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	c.Close()
	o.waitIdle(t, func() bool { return srv.OpenConnections() == 0 && srv.InFlight() == 0 })
	if len(statuses) != 2 || statuses[0] != http.StatusOK || statuses[1] != http.StatusBadRequest {
		t.Fatalf("responses %v, want [200 400]: one per request the client sent", statuses)
	}
	err = o.findings()
	if err == nil || !strings.Contains(err.Error(), `: T /"]`) {
		t.Fatalf("findings = %v, want the client's first request, unmarked", err)
	}
	t.Log(err)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.touched) != 1 {
		t.Fatalf("%d origin connections received bytes, want 1", len(o.touched))
	}
	for oc := range o.touched {
		if n := strings.Count(string(oc.raw), "HTTP/1.1\r\n"); n != 1 {
			t.Fatalf("origin received %d requests, want only the first: %q", n, oc.raw)
		}
	}
}

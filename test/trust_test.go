package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trustConfig runs the gateway behind a "load balancer" (every test client
// is 127.0.0.1, which the config trusts as a proxy), so the client identity
// comes from X-Forwarded-For. 10.0.0.0/8 is the internal network trusted to
// send the priority and chaos headers.
func trustConfig(originAddr string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  trusted_proxies: [127.0.0.1/32]
admin: {listen: "127.0.0.1:0"}
origins:
  app: {instances: [{address: %q}]}
rate_limit:
  policies:
    - {name: per-client, rate: 0.01, burst: 1, key: [client_ip]}
    - {name: per-key, rate: 0.01, burst: 1, key: ["header:X-Api-Key"]}
routes:
  - {name: by-ip, match: {path_prefix: /rl/ip}, origin: app, filters: [{name: rate_limit, options: {policy: per-client}}]}
  - {name: by-key, match: {path_prefix: /rl/key}, origin: app, filters: [{name: rate_limit, options: {policy: per-key}}]}
  - {name: app, match: {path_prefix: /}, origin: app}
loadshed:
  scoring:
    default_score: 50
    rules: [{name: low, match: {path_prefixes: [/low]}, set: 90}]
    priority_header: {name: X-Priority, trusted_cidrs: [10.0.0.0/8]}
  chaos: {enabled: true, min_score: 80, max_score: 100, header: X-Floodgate-Chaos, trusted_cidrs: [10.0.0.0/8]}
`, originAddr)
}

// accessLine waits for the access log line of the request with id.
func accessLine(t *testing.T, p *proc, id string) map[string]any {
	t.Helper()
	var line map[string]any
	eventually(t, 5*time.Second, "access log line for "+id, func() bool {
		for _, l := range strings.Split(p.stdout.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["request_id"] == id {
				line = m
				return true
			}
		}
		return false
	})
	return line
}

// Issue 10 items 1-3: one client identity behind a trusted proxy, used by
// every trust decision, and gateway-internal headers never relayed from a
// client not trusted to send them.
func TestTrustOneIdentityBehindALoadBalancer(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, trustConfig(o.addr))
	p := startProcess(t, path)

	// send issues a raw request (header names exactly as written) as if
	// relayed by the load balancer for the client at xff.
	send := func(target, xff, id string, headers ...string) (*http.Response, string) {
		req := "GET " + target + " HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: " + id + "\r\n"
		if xff != "" {
			req += "X-Forwarded-For: " + xff + "\r\n"
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req += headers[i] + ": " + headers[i+1] + "\r\n"
		}
		return raw(t, p.addr, req+"Connection: close\r\n\r\n")
	}

	t.Run("an outside client cannot use the priority or chaos header through the LB", func(t *testing.T) {
		// The client forged a leading hop from the internal network; the LB
		// appended the address it really saw.
		resp, body := send("/low/feed", "10.9.9.9, 203.0.113.7", "outsider-1", "X-Priority", "0", "x-floodgate-chaos", "go")
		if resp.StatusCode != 200 {
			t.Fatalf("outsider with the chaos header: %d %s (the header must be ignored)", resp.StatusCode, body)
		}
		e := decodeEcho(t, body)
		if v := e.header("X-Priority"); len(v) != 0 {
			t.Errorf("origin received the untrusted priority header %v", v)
		}
		if v := e.header("X-Floodgate-Chaos"); len(v) != 0 {
			t.Errorf("origin received the untrusted chaos header %v", v)
		}
		if v := e.header("X-Forwarded-For"); len(v) != 1 || v[0] != "10.9.9.9, 203.0.113.7, 127.0.0.1" {
			t.Errorf("X-Forwarded-For upstream = %v, want the LB's list extended by its address", v)
		}
		line := accessLine(t, p, "outsider-1")
		if line["client_ip"] != "203.0.113.7" || line["peer_ip"] != "127.0.0.1" {
			t.Errorf("log identity: client_ip %v peer_ip %v", line["client_ip"], line["peer_ip"])
		}
		if line["priority"] != float64(90) {
			t.Errorf("priority %v, want 90 from the rules (the header is not the client's to set)", line["priority"])
		}
	})

	t.Run("an internal client behind the LB may use them", func(t *testing.T) {
		resp, body := send("/crit", "10.1.2.3", "insider-1", "x-priority", "0")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if v := decodeEcho(t, body).header("X-Priority"); len(v) != 1 || v[0] != "0" {
			t.Errorf("a trusted client's priority header is relayed: got %v", v)
		}
		if line := accessLine(t, p, "insider-1"); line["priority"] != float64(0) || line["client_ip"] != "10.1.2.3" {
			t.Errorf("insider: priority %v client_ip %v", line["priority"], line["client_ip"])
		}
		resp, _ = send("/low/feed", "10.1.2.3", "insider-2", "X-Floodgate-Chaos", "go")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Floodgate-Status") != "local_shed_chaos" {
			t.Errorf("trusted chaos request: %d %s", resp.StatusCode, resp.Header.Get("X-Floodgate-Status"))
		}
	})

	t.Run("rate limit client_ip is the client, not the LB", func(t *testing.T) {
		if resp, _ := send("/rl/ip/a", "198.51.100.1", "rl-a1"); resp.StatusCode != 200 {
			t.Fatalf("client A first request: %d", resp.StatusCode)
		}
		if resp, _ := send("/rl/ip/a", "198.51.100.1", "rl-a2"); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("client A second request: %d, want 429", resp.StatusCode)
		}
		if resp, _ := send("/rl/ip/b", "198.51.100.2", "rl-b1"); resp.StatusCode != 200 {
			t.Fatalf("client B shares A's bucket: %d", resp.StatusCode)
		}
	})

	t.Run("a header rate-limit key matches in any spelling", func(t *testing.T) {
		if resp, _ := send("/rl/key", "", "key-1", "x-api-key", "k1"); resp.StatusCode != 200 {
			t.Fatalf("k1 first: %d", resp.StatusCode)
		}
		if resp, _ := send("/rl/key", "", "key-2", "X-API-KEY", "k1"); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("k1 again in another spelling: %d, want 429", resp.StatusCode)
		}
		if resp, _ := send("/rl/key", "", "key-3", "x-api-key", "k2"); resp.StatusCode != 200 {
			t.Fatalf("k2 shares k1's bucket (the header was read as absent): %d", resp.StatusCode)
		}
	})

	t.Run("a lower-case request id is validated and sent upstream once", func(t *testing.T) {
		req := "GET /id HTTP/1.1\r\nHost: app.test\r\nx-request-id: has space\r\nConnection: close\r\n\r\n"
		resp, body := raw(t, p.addr, req)
		ids := decodeEcho(t, body).header("X-Request-Id")
		if len(ids) != 1 || ids[0] == "has space" || ids[0] != resp.Header.Get("X-Request-Id") {
			t.Errorf("origin got ids %v, client got %q: want one replaced id, the same on both sides", ids, resp.Header.Get("X-Request-Id"))
		}
		req = "GET /id HTTP/1.1\r\nHost: app.test\r\nx-request-id: good-id-7\r\nConnection: close\r\n\r\n"
		resp, body = raw(t, p.addr, req)
		if ids := decodeEcho(t, body).header("X-Request-Id"); len(ids) != 1 || ids[0] != "good-id-7" || resp.Header.Get("X-Request-Id") != "good-id-7" {
			t.Errorf("valid lower-case id: origin got %v, client %q", ids, resp.Header.Get("X-Request-Id"))
		}
	})
}

// Forwarded and X-Real-IP are identity headers like X-Forwarded-For: from a
// trusted proxy they are kept (Forwarded extended), from anyone else
// replaced by what the gateway saw.
func TestTrustForwardedAndRealIPHeaders(t *testing.T) {
	o := startOrigin(t, echoHandler)
	for _, tc := range []struct {
		name, trusted           string
		wantForwarded, wantReal string
		wantXFF                 string
	}{
		{"untrusted sender", "[10.0.0.0/8]", "for=127.0.0.1;host=app.test;proto=http", "127.0.0.1", "127.0.0.1"},
		{"trusted proxy", "[127.0.0.1/32]", "for=192.0.2.1, for=127.0.0.1;host=app.test;proto=http", "192.0.2.1", "192.0.2.1, 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", trusted_proxies: %s}
origins: {backend: {instances: [{address: %q}]}}
routes: [{name: backend, match: {path_prefix: /o}, rewrite: {strip_prefix: /o}, origin: backend}]
`, tc.trusted, o.addr))
			_, body := raw(t, g.addr, "GET /o/x HTTP/1.1\r\nHost: app.test\r\nforwarded: for=192.0.2.1\r\nx-real-ip: 192.0.2.1\r\nX-Forwarded-For: 192.0.2.1\r\nConnection: close\r\n\r\n")
			e := decodeEcho(t, body)
			if v := e.header("Forwarded"); len(v) != 1 || v[0] != tc.wantForwarded {
				t.Errorf("Forwarded = %q, want %q", v, tc.wantForwarded)
			}
			if v := e.header("X-Real-IP"); len(v) != 1 || v[0] != tc.wantReal {
				t.Errorf("X-Real-IP = %q, want %q", v, tc.wantReal)
			}
			if v := e.header("X-Forwarded-For"); len(v) != 1 || v[0] != tc.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", v, tc.wantXFF)
			}
		})
	}
	// A request without them gets none invented.
	g := startGateway(t, baseConfig(o.addr, ""))
	_, body := raw(t, g.addr, "GET /o/x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
	e := decodeEcho(t, body)
	if len(e.header("Forwarded")) != 0 || len(e.header("X-Real-IP")) != 0 {
		t.Errorf("invented identity headers: %v", e.Headers)
	}
}

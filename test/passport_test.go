package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 18 item 4: a trusted caller gets the request's passport back (as a
// header and at the admin endpoint), an untrusted one never does, and its
// debug header does not reach the origin.
func TestPassportOnlyForTrustedCallers(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	// Every test client is 127.0.0.1, trusted as a load balancer, so the
	// client identity comes from X-Forwarded-For; 10.0.0.0/8 may debug.
	writeFile(t, path, fmt.Sprintf(`
server: {listen: "127.0.0.1:0", trusted_proxies: [127.0.0.1/32]}
admin: {listen: "127.0.0.1:0"}
origins:
  app: {instances: [{address: %q}]}
rate_limit:
  policies: [{name: generous, rate: 1000, burst: 1000, key: [client_ip]}]
routes:
  - {name: app, match: {path_prefix: /}, origin: app, filters: [{name: rate_limit, options: {policy: generous}}]}
passport:
  options: {trusted_cidrs: [10.0.0.0/8], keep: 10}
`, o.addr))
	p := startProcess(t, path)
	send := func(xff, id string, headers ...string) (*http.Response, string) {
		req := "GET /orders HTTP/1.1\r\nHost: app.test\r\nX-Request-Id: " + id + "\r\nX-Forwarded-For: " + xff + "\r\n"
		for i := 0; i+1 < len(headers); i += 2 {
			req += headers[i] + ": " + headers[i+1] + "\r\n"
		}
		return raw(t, p.addr, req+"Connection: close\r\n\r\n")
	}
	admin := func(id string) (int, map[string]any) {
		resp, err := http.Get("http://" + p.adminAddr + "/admin/passports/" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("admin answer %q: %v", b, err)
		}
		return resp.StatusCode, doc
	}

	resp, body := send("10.1.2.3", "trusted-1", "x-floodgate-debug", "passport")
	if resp.StatusCode != 200 {
		t.Fatalf("trusted request: %d %s", resp.StatusCode, body)
	}
	header := resp.Header.Get("X-Floodgate-Passport")
	t.Logf("passport header (%d bytes): %s", len(header), header)
	for _, want := range []string{
		"request_id continued", "passport: requested by a trusted client",
		"shed_global: admitted score=50 cutoff=100", "rate_limit: policy generous allowed remaining=999 limit=1000",
		"shed_origin: admitted score=50", "attempt " + o.addr + " success status=200", "proxy responded", "metrics continued",
	} {
		if !strings.Contains(header, want) {
			t.Errorf("passport header lacks %q", want)
		}
	}
	if v := decodeEcho(t, body).header("X-Floodgate-Debug"); len(v) != 1 {
		t.Errorf("a trusted caller's debug header reaches the origin as sent: %v", v)
	}
	// The admin copy is complete: recorded once the response was sent,
	// with the outbound steps that ran after the header was set.
	var events []any
	eventually(t, 5*time.Second, "the stored passport", func() bool {
		code, doc := admin("trusted-1")
		events, _ = doc["events"].([]any)
		return code == 200 && doc["status"] == float64(200) && doc["route"] == "app"
	})
	joined := fmt.Sprint(events...)
	if !strings.Contains(joined, "passport_header continued") || !strings.Contains(joined, "access_log continued") {
		t.Errorf("stored passport misses the last outbound steps: %v", events)
	}

	// An outside client, even one forging an internal first hop, gets no
	// passport; its header is stripped and nothing is stored.
	resp, body = send("10.9.9.9, 203.0.113.7", "outsider-1", "X-Floodgate-Debug", "passport")
	if resp.StatusCode != 200 {
		t.Fatalf("untrusted request: %d %s", resp.StatusCode, body)
	}
	if v := resp.Header.Get("X-Floodgate-Passport"); v != "" {
		t.Errorf("an untrusted caller got a passport: %q", v)
	}
	if v := decodeEcho(t, body).header("X-Floodgate-Debug"); len(v) != 0 {
		t.Errorf("the untrusted debug header reached the origin: %v", v)
	}
	code, doc := admin("outsider-1")
	if code != 404 || !strings.Contains(fmt.Sprint(doc["reason"]), "trusted client") {
		t.Errorf("admin for the untrusted request: %d %v", code, doc)
	}
	// A trusted caller that does not ask gets nothing either.
	if resp, _ := send("10.1.2.3", "trusted-2"); resp.Header.Get("X-Floodgate-Passport") != "" {
		t.Error("passport returned unasked")
	}
}

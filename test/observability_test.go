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

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func observabilityConfig(originAddr string) string {
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0", token: "s3cret-token"}
origins:
  backend:
    instances: [{address: %q}]
rate_limit:
  policies:
    - {name: tight, rate: 1, burst: 2, key: [client_ip]}
routes:
  - name: backend
    match: {path_prefix: /o}
    rewrite: {strip_prefix: /o}
    origin: backend
  - name: limited
    match: {path: /limited}
    static: {status: 200, body: fine}
    filters: [{name: rate_limit, options: {policy: tight}}]
# The test's client connects directly: let it choose its request id.
request_id: {options: {trust_from: anyone}}
`, originAddr)
}

func adminGet(t *testing.T, c *http.Client, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func TestMetricsAccessLogAndAdminAfterRealTraffic(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, observabilityConfig(o.addr))
	p := startProcess(t, path)
	c := httpClient(t)
	if p.adminAddr == "" {
		t.Fatal("admin address not logged")
	}

	for i := 0; i < 5; i++ {
		get(t, c, "http://"+p.addr+"/o/ok")
	}
	get(t, c, "http://"+p.addr+"/missing")
	req, _ := http.NewRequest("GET", "http://"+p.addr+"/o/with-id", nil)
	req.Header.Set("X-Request-Id", "client-chosen-id-42")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "client-chosen-id-42" {
		t.Errorf("a valid client request id must be returned: %q", resp.Header.Get("X-Request-Id"))
	}
	var limited *http.Response
	for i := 0; i < 4; i++ {
		limited, _ = get(t, c, "http://"+p.addr+"/limited")
	}
	if limited.StatusCode != 429 || limited.Header.Get("Retry-After") == "" || limited.Header.Get("RateLimit-Limit") == "" ||
		limited.Header.Get("X-Floodgate-Status") != "rate_limited" {
		t.Errorf("rate limited response: %d %v", limited.StatusCode, limited.Header)
	}

	// The admin API wants its token.
	resp, _ = adminGet(t, c, "http://"+p.adminAddr+"/metrics", "")
	if resp.StatusCode != 401 {
		t.Fatalf("admin without token: %d", resp.StatusCode)
	}
	resp, _ = adminGet(t, c, "http://"+p.adminAddr+"/healthz", "")
	if resp.StatusCode != 200 {
		t.Fatalf("healthz must not need the token: %d", resp.StatusCode)
	}

	// Metrics, parsed with the Prometheus text parser.
	resp, body := adminGet(t, c, "http://"+p.adminAddr+"/metrics", "s3cret-token")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	requests := families["floodgate_requests_total"]
	if requests == nil {
		t.Fatal("floodgate_requests_total missing")
	}
	want := map[string]float64{
		"backend|2xx|success":      6,
		"none|4xx|no_route":        1,
		"limited|4xx|rate_limited": 2,
		"limited|2xx|success":      2,
	}
	got := map[string]float64{}
	for _, m := range requests.Metric {
		got[label(m, "route")+"|"+label(m, "code_class")+"|"+label(m, "category")] = m.GetCounter().GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("floodgate_requests_total{%s} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	for _, name := range []string{"floodgate_request_duration_seconds", "floodgate_requests_in_flight",
		"floodgate_open_connections", "floodgate_origin_requests_total", "floodgate_rate_limited_total"} {
		if families[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	for _, m := range families["floodgate_request_duration_seconds"].GetMetric() {
		if label(m, "route") == "backend" && m.GetHistogram().GetSampleCount() != 6 {
			t.Errorf("duration histogram count %d, want 6", m.GetHistogram().GetSampleCount())
		}
	}

	// Admin JSON shapes.
	_, body = adminGet(t, c, "http://"+p.adminAddr+"/admin/routes", "s3cret-token")
	var routes struct {
		Routes []struct {
			Name, Endpoint string
		}
	}
	if err := json.Unmarshal(body, &routes); err != nil || len(routes.Routes) != 2 ||
		routes.Routes[0].Name != "backend" || routes.Routes[0].Endpoint != "proxy" || routes.Routes[1].Endpoint != "static" {
		t.Errorf("/admin/routes: %v %s", err, body)
	}
	_, body = adminGet(t, c, "http://"+p.adminAddr+"/admin/filters", "s3cret-token")
	var chains struct {
		Routes map[string][]struct {
			Name, Stage string
			Order       int
		}
	}
	if err := json.Unmarshal(body, &chains); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range chains.Routes["limited"] {
		names = append(names, f.Stage+":"+f.Name)
	}
	if strings.Join(names, ",") != "inbound:request_id,inbound:passport,inbound:shed_global,inbound:chaos_global,inbound:rate_limit,endpoint:static,outbound:metrics,outbound:passport_header,outbound:access_log" {
		t.Errorf("limited chain: %v", names)
	}
	_, body = adminGet(t, c, "http://"+p.adminAddr+"/admin/config", "s3cret-token")
	if strings.Contains(string(body), "s3cret-token") || !strings.Contains(string(body), "REDACTED") {
		t.Errorf("/admin/config must redact the admin token: %s", body)
	}

	// One access log line per request, with the fields an operator needs.
	deadline := time.Now().Add(5 * time.Second)
	var lines []map[string]any
	for {
		lines = lines[:0]
		for _, l := range strings.Split(strings.TrimSpace(p.stdout.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
				lines = append(lines, m)
			}
		}
		if len(lines) >= 11 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the log is written as responses complete
	}
	if len(lines) != 11 {
		t.Fatalf("%d access log lines, want 11:\n%s", len(lines), p.stdout.String())
	}
	var withID, limitedLine map[string]any
	for _, l := range lines {
		if l["request_id"] == "client-chosen-id-42" {
			withID = l
		}
		if l["category"] == "rate_limited" {
			limitedLine = l
		}
	}
	if withID == nil || withID["route"] != "backend" || withID["origin"] != "backend" || withID["status"] != float64(200) ||
		withID["instance"] != o.addr || withID["path"] != "/o/with-id" || withID["method"] != "GET" {
		t.Errorf("access log line: %v", withID)
	}
	if limitedLine == nil || !strings.Contains(fmt.Sprint(limitedLine["reason"]), "tight") {
		t.Errorf("rate-limited line must carry the reason: %v", limitedLine)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

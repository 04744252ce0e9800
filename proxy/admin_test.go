package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

const staticOnly = `
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
routes:
  - name: hello
    match: {path: /hello}
    static: {status: 200, body: hello}
`

func adminDo(t *testing.T, h http.Handler, path, authorization string) (int, http.Header, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Result().Header, string(body)
}

// The dashboard sits behind the same token as the API. A browser cannot
// send a bearer token when opening a page, so the token is also accepted
// as the password of Basic credentials, and a 401 offers Basic for the
// browser to ask for it.
func TestAdminTokenGuardsDashboardBearerOrBasic(t *testing.T) {
	srv := startTestServer(t, staticOnly, nil)
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "page") })
	var token atomic.Value
	token.Store("s3cret")
	a := &Admin{Server: srv.Server, Dashboard: page, LiveToken: func() string { return token.Load().(string) },
		Sections: map[string]func() any{"dashboard.json": func() any { return map[string]int{"n": 1} }}}
	h := a.Handler()

	code, hdr, _ := adminDo(t, h, "/dashboard", "")
	if code != 401 || !strings.Contains(strings.Join(hdr.Values("WWW-Authenticate"), "|"), "Basic realm=") {
		t.Fatalf("no credentials: %d %v", code, hdr.Values("WWW-Authenticate"))
	}
	basic := func(user, pass string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/dashboard", "Bearer s3cret", 200},
		{"/dashboard/", basic("ops", "s3cret"), 200},
		{"/admin/dashboard.json", basic("", "s3cret"), 200},
		{"/admin/dashboard.json", basic("s3cret", "wrong"), 401},
		{"/dashboard", "Bearer wrong", 401},
		// RFC 9110 11.1: the auth scheme is case-insensitive.
		{"/admin/dashboard.json", "bearer s3cret", 200},
		{"/admin/dashboard.json", "BEARER s3cret", 200},
		{"/admin/dashboard.json", "Bearers3cret", 401},
		{"/admin/dashboard.json", "Bearer", 401},
		{"/admin/dashboard.json", "Token s3cret", 401},
		{"/healthz", "", 200},
		{"/readyz", "", 200},
	} {
		if code, _, body := adminDo(t, h, tc.path, tc.auth); code != tc.want {
			t.Errorf("%s with %q: %d %s, want %d", tc.path, tc.auth, code, body, tc.want)
		}
	}

	// A reloaded token applies to the next request.
	token.Store("rotated")
	if code, _, _ := adminDo(t, h, "/admin/dashboard.json", "Bearer s3cret"); code != 401 {
		t.Errorf("old token after rotation: %d", code)
	}
	if code, _, _ := adminDo(t, h, "/admin/dashboard.json", "Bearer rotated"); code != 200 {
		t.Errorf("new token after rotation: %d", code)
	}
	// Removing the token (loopback only; validation requires one
	// elsewhere) opens the API again.
	token.Store("")
	if code, _, _ := adminDo(t, h, "/admin/dashboard.json", ""); code != 200 {
		t.Errorf("no token configured: %d", code)
	}
}

func TestReadyzTurns503WhenShutdownBegins(t *testing.T) {
	srv := startTestServer(t, staticOnly, nil)
	h := (&Admin{Server: srv.Server}).Handler()
	if code, _, body := adminDo(t, h, "/readyz", ""); code != 200 {
		t.Fatalf("before shutdown: %d %s", code, body)
	}
	srv.BeginShutdown()
	code, _, body := adminDo(t, h, "/readyz", "")
	var v map[string]string
	_ = json.Unmarshal([]byte(body), &v)
	if code != 503 || v["reason"] != "shutting down" {
		t.Fatalf("after BeginShutdown: %d %s", code, body)
	}
	if code, _, _ := adminDo(t, h, "/healthz", ""); code != 200 {
		t.Fatalf("liveness must stay 200 while draining: %d", code)
	}
	// The listener still serves, and asks keep-alive clients to go.
	resp, err := http.Get("http://" + srv.addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("while shutting down: %d, Connection: close=%v", resp.StatusCode, resp.Close)
	}
}

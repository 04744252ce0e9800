package dashboard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestPageAndAssetsAreServedFromTheBinary(t *testing.T) {
	h := Handler()
	for path, want := range map[string]struct{ ctype, contains string }{
		"/dashboard":               {"text/html", `<script src="/dashboard/dashboard.js" defer></script>`},
		"/dashboard/":              {"text/html", `id="scopes"`},
		"/dashboard/dashboard.js":  {"text/javascript", DocumentPath},
		"/dashboard/dashboard.css": {"text/css", "svg.curve"},
	} {
		resp, body := get(t, h, http.MethodGet, path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), want.ctype) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(body, want.contains) {
			t.Errorf("%s: body lacks %q", path, want.contains)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: content security policy %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
	if resp, body := get(t, h, http.MethodHead, "/dashboard"); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d with %d body bytes", resp.StatusCode, len(body))
	}
	if resp, _ := get(t, h, http.MethodGet, "/dashboard/../admin/config"); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
	if resp, _ := get(t, h, http.MethodGet, "/dashboard/secret.txt"); resp.StatusCode != 404 {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
}

// The page is small and needs nothing from elsewhere: no external URL, no
// inline script the content security policy would block.
func TestPageIsSelfContained(t *testing.T) {
	total := 0
	for _, name := range []string{"index.html", "dashboard.js", "dashboard.css"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		for _, bad := range []string{"http://", "https://", "innerHTML", "eval("} {
			if strings.Contains(strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", ""), bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
	html, _ := assets.ReadFile("assets/index.html")
	if strings.Contains(string(html), "<script>") || strings.Contains(string(html), "style=") {
		t.Error("index.html has inline script or style, which the policy blocks")
	}
	if total > 64<<10 {
		t.Errorf("the page weighs %d bytes; keep it small", total)
	}
}

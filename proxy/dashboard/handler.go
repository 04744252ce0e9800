package dashboard

import (
	"embed"
	"net/http"
	"path"
)

// DocumentPath is where the page fetches its data; the admin API serves
// Sources.Document there.
const DocumentPath = "/admin/dashboard.json"

//go:embed assets
var assets embed.FS

// asset is one embedded file and its content type.
type asset struct {
	body        []byte
	contentType string
}

var pages = map[string]asset{
	"/dashboard":               mustAsset("index.html", "text/html; charset=utf-8"),
	"/dashboard/":              mustAsset("index.html", "text/html; charset=utf-8"),
	"/dashboard/dashboard.js":  mustAsset("dashboard.js", "text/javascript; charset=utf-8"),
	"/dashboard/dashboard.css": mustAsset("dashboard.css", "text/css; charset=utf-8"),
	"/dashboard/favicon.svg":   mustAsset("favicon.svg", "image/svg+xml"),
}

func mustAsset(name, contentType string) asset {
	b, err := assets.ReadFile(path.Join("assets", name))
	if err != nil {
		panic("dashboard: missing embedded asset " + name) // a build defect, caught by the package's tests
	}
	return asset{body: b, contentType: contentType}
}

// contentSecurityPolicy allows only the page's own script, style and data
// fetches: no inline script, nothing from elsewhere, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page and its assets under /dashboard. Mount it behind
// the admin API's authorization.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(a.body)
	})
}

package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/filters"
)

// Admin serves the operator API on its own listener: health, readiness,
// metrics, the effective config, routes, filter chains, origin and
// shedding state, and pprof. It uses net/http: it carries little traffic
// and pprof is built for it.
type Admin struct {
	Server *Server
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// Sections are extra JSON endpoints under /admin/, e.g. "origins" and
	// "shed", each returning a JSON-encodable snapshot.
	Sections map[string]func() any
	// Ready reports why the gateway is not ready, or nil.
	Ready func() error
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// everything but /healthz and /readyz.
	Token string
	// LiveToken, when set, is consulted on every request instead of Token,
	// so a reloaded admin.token applies at once.
	LiveToken func() string
	// Dashboard serves the operator page under /dashboard; nil leaves it
	// out. Its data is a Section ("dashboard.json").
	Dashboard http.Handler
	// Handlers are further endpoints by ServeMux pattern, e.g.
	// "GET /admin/passports/{id}", owned by the package that serves them.
	Handlers map[string]http.Handler
}

// Handler returns the admin API.
func (a *Admin) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "live"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /admin/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, Redacted(a.Server.Snapshot().Config))
	})
	mux.HandleFunc("GET /admin/routes", a.routes)
	mux.HandleFunc("GET /admin/filters", a.filters)
	for name, fn := range a.Sections {
		mux.HandleFunc("GET /admin/"+name, func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, fn())
		})
	}
	for pattern, h := range a.Handlers {
		mux.Handle(pattern, h)
	}
	if a.Metrics != nil {
		mux.Handle("GET /metrics", a.Metrics)
	}
	if a.Dashboard != nil {
		mux.Handle("GET /dashboard", a.Dashboard)
		mux.Handle("GET /dashboard/", a.Dashboard)
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return a.authorize(mux)
}

func (a *Admin) authorize(next http.Handler) http.Handler {
	if a.Token == "" && a.LiveToken == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := a.Token
		if a.LiveToken != nil {
			token = a.LiveToken()
		}
		if token != "" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !presentsToken(r, token) {
			// Basic is offered too so a browser opening /dashboard asks
			// for the token (as the password) and then sends it with the
			// page's own requests.
			w.Header().Add("WWW-Authenticate", `Bearer realm="floodgate-admin"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="floodgate-admin", charset="UTF-8"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// presentsToken accepts "Authorization: Bearer <token>", or Basic
// credentials whose password is the token (any user name).
func presentsToken(r *http.Request, token string) bool {
	if _, pass, ok := r.BasicAuth(); ok {
		return subtle.ConstantTimeCompare([]byte(pass), []byte(token)) == 1
	}
	return subtle.ConstantTimeCompare([]byte(bearerCredentials(r.Header.Get("Authorization"))), []byte(token)) == 1
}

// bearerCredentials returns the credentials of a Bearer authorization, or
// "". The scheme name is case-insensitive (RFC 9110 11.1): "bearer x" and
// "BEARER x" are as good as "Bearer x".
func bearerCredentials(v string) string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimLeft(cred, " ")
}

func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	if a.Server.ShuttingDown() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "shutting down"})
		return
	}
	if a.Server.Snapshot() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "no config loaded"})
		return
	}
	if a.Ready != nil {
		if err := a.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

type routeView struct {
	Name    string `json:"name"`
	Index   int    `json:"index"`
	Match   any    `json:"match"`
	Rewrite any    `json:"rewrite"`
	// Endpoint is the endpoint's name in chains ("proxy", "static", ...),
	// Kind the route's endpoint key, Settings the endpoint's own admin view
	// (filters.Describer), e.g. an origin route's effective timeouts.
	Endpoint string `json:"endpoint"`
	Kind     string `json:"kind"`
	Settings any    `json:"settings,omitempty"`
}

func (a *Admin) routes(w http.ResponseWriter, _ *http.Request) {
	snap := a.Server.Snapshot()
	cfg := snap.Config
	out := make([]routeView, 0, len(cfg.Routes))
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		kind, _, _ := r.EndpointKind()
		v := routeView{Name: r.Name, Index: i, Match: decode.Tree(r.Match), Rewrite: decode.Tree(r.Rewrite), Kind: kind}
		if ep := snap.Chains[i].Endpoint(); ep != nil {
			v.Endpoint = ep.Name()
			if d, ok := ep.(filters.Describer); ok {
				v.Settings = d.Describe()
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"source": cfg.Source, "routes": out})
}

type filterView struct {
	Name     string `json:"name"`
	Stage    string `json:"stage"`
	Order    int    `json:"order"`
	Async    bool   `json:"async,omitempty"`
	Settings any    `json:"settings,omitempty"`
}

func chainView(ch *filters.Chain) []filterView {
	if ch == nil {
		return nil
	}
	var out []filterView
	for _, f := range ch.Filters() {
		_, async := f.(filters.AsyncFilter)
		v := filterView{Name: f.Name(), Stage: f.Stage().String(), Order: f.Order(), Async: async}
		if d, ok := f.(filters.Describer); ok {
			v.Settings = d.Describe()
		}
		out = append(out, v)
	}
	return out
}

func (a *Admin) filters(w http.ResponseWriter, _ *http.Request) {
	snap := a.Server.Snapshot()
	routes := map[string][]filterView{}
	for i, r := range snap.Config.Routes {
		routes[r.Name] = chainView(snap.Chains[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": routes, "no_route": chainView(snap.NoRoute)})
}

// secretKeys are option and config key fragments whose values are never
// shown by the admin API.
var secretKeys = []string{"token", "secret", "password", "passwd", "api_key", "apikey", "authorization", "credential"}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range secretKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Redacted returns the config as its YAML keys would write it (snake_case,
// human units), plus its source, with secret values replaced.
func Redacted(cfg *config.Config) any {
	v, _ := decode.Tree(cfg).(map[string]any)
	if v == nil {
		v = map[string]any{}
	}
	v["source"] = cfg.Source
	return redact(v)
}

func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if s, ok := val.(string); ok && s != "" && isSecretKey(k) {
				t[k] = "REDACTED"
				continue
			}
			t[k] = redact(val)
		}
	case []any:
		for i := range t {
			t[i] = redact(t[i])
		}
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ServeAdmin serves h on ln until the returned server is shut down.
func ServeAdmin(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

package passport

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// AdminPattern is where the admin API serves stored passports.
const AdminPattern = "GET /admin/passports/{id}"

// AdminHandler serves GET /admin/passports/{id}: the stored passport as
// JSON, or 404 with the reason it is not there.
func AdminHandler(r *Ring) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("id")
		e, ok := r.Get(id)
		if !ok {
			held, added := r.Stats()
			writeJSON(w, http.StatusNotFound, map[string]any{
				"error": "no passport for request id " + strconv.Quote(id),
				"reason": "only requests that asked for one (the passport section's header, from a trusted client) are kept, " +
					"the newest " + strconv.Itoa(held) + " of " + strconv.FormatUint(added, 10) + " stored so far; " +
					"this one was never stored, was evicted, or is still in flight (a passport is stored once the response is complete)",
			})
			return
		}
		writeJSON(w, http.StatusOK, e)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

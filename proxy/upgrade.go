package proxy

import (
	"bytes"
	"net/http"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/filters"
)

// A request that carries an Upgrade header asks to leave HTTP on its
// connection. The gateway carries exactly one such protocol, WebSocket, on
// routes to an origin (tunnel.go); every other upgrade (h2c, anything
// unknown) is refused here, before routing's chain runs, rather than
// forwarded as a plain request with Upgrade stripped: a client that asked
// for another protocol must learn that it did not get it.

// upgradeRefusal decides whether a request may proceed as what it asks to
// be. It returns status 0 for a request without Upgrade and for a
// well-formed WebSocket handshake on a route that carries one; otherwise
// the status, category and reason of the refusal. route is the matched
// route's config (nil: no route matched, and the no-route answer applies).
func upgradeRefusal(h *fasthttp.RequestHeader, route *config.Route) (int, filters.Category, string) {
	var buf [2][]byte
	values := peekFold(h, "Upgrade", buf[:0])
	if len(values) == 0 || route == nil {
		return 0, "", ""
	}
	proto := bytes.TrimSpace(bytes.Join(values, []byte(",")))
	if !bytes.EqualFold(proto, []byte("websocket")) {
		return http.StatusNotImplemented, filters.CategoryUpgradeRefused,
			"upgrade to " + quoteProto(proto) + " is not supported; the gateway upgrades to websocket only"
	}
	if !connectionHasToken(h, "upgrade") {
		// RFC 9110 7.8: Upgrade is only in effect with the "upgrade"
		// connection option; forwarding it as a plain GET would be the
		// silent downgrade this check exists to prevent.
		return http.StatusBadRequest, filters.CategoryClientError, "Upgrade: websocket without Connection: upgrade"
	}
	if !bytes.Equal(h.Method(), []byte(http.MethodGet)) {
		return http.StatusBadRequest, filters.CategoryClientError, "a WebSocket handshake must be a GET"
	}
	if !bytes.Equal(h.Protocol(), []byte("HTTP/1.1")) {
		return http.StatusBadRequest, filters.CategoryClientError, "a WebSocket handshake needs HTTP/1.1"
	}
	if cl := h.ContentLength(); cl != -2 && cl != 0 {
		return http.StatusBadRequest, filters.CategoryClientError, "a WebSocket handshake carries no body"
	}
	if kind, _, _ := route.EndpointKind(); !config.CarriesWebSocket(kind) {
		return http.StatusNotImplemented, filters.CategoryUpgradeRefused,
			"route " + route.Name + " (" + kind + " endpoint) does not carry WebSocket"
	}
	if !route.WebSocketAllowed() {
		return http.StatusNotImplemented, filters.CategoryUpgradeRefused,
			"route " + route.Name + " has websocket: false"
	}
	return 0, "", ""
}

// isUpgradeRequest reports whether the request carries an Upgrade header;
// past Dispatch, that is a WebSocket handshake upgradeRefusal accepted.
func isUpgradeRequest(h *fasthttp.RequestHeader) bool {
	for k := range h.All() {
		if bytes.EqualFold(k, []byte("Upgrade")) {
			return true
		}
	}
	return false
}

// connectionHasToken reports whether a Connection header lists token.
func connectionHasToken(h *fasthttp.RequestHeader, token string) bool {
	var buf [4][]byte
	var toks [4][]byte
	for _, v := range peekFold(h, "Connection", buf[:0]) {
		for _, t := range connectionTokens(v, toks[:0]) {
			if bytes.EqualFold(t, []byte(token)) {
				return true
			}
		}
	}
	return false
}

// responseIsWebSocket reports whether an origin's 101 switched to
// WebSocket, the protocol the client asked for.
func responseIsWebSocket(h *fasthttp.ResponseHeader) bool {
	for k, v := range h.All() {
		if bytes.EqualFold(k, []byte("Upgrade")) {
			return bytes.EqualFold(bytes.TrimSpace(v), []byte("websocket"))
		}
	}
	return false
}

// quoteProto names a requested protocol in a reason, bounded so a long
// header does not make a long answer.
func quoteProto(p []byte) string {
	const maxShown = 64
	if len(p) > maxShown {
		return `"` + string(p[:maxShown]) + `..."`
	}
	return `"` + string(p) + `"`
}

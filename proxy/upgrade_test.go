package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/config"
)

func TestUpgradeRefusal(t *testing.T) {
	off := false
	origin := &config.Route{Name: "chat", Endpoint: map[string]any{"origin": "chat"}}
	disabled := &config.Route{Name: "feed", Endpoint: map[string]any{"origin": "feed"}, WebSocket: &off}
	static := &config.Route{Name: "health", Endpoint: map[string]any{"static": map[string]any{}}}
	const ws = "Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n"
	tests := []struct {
		name, head string
		route      *config.Route
		status     int
		reason     string
	}{
		{"no upgrade", "GET / HTTP/1.1\r\nHost: x\r\n", origin, 0, ""},
		{"websocket", "GET / HTTP/1.1\r\nHost: x\r\n" + ws, origin, 0, ""},
		{"no route: the no-route answer applies", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n", nil, 0, ""},
		{"h2c", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n", origin, 501, `upgrade to "h2c" is not supported`},
		{"two Upgrade headers", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n", origin, 501, `"websocket,h2c"`},
		{"long protocol is cut", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + strings.Repeat("p", 200) + "\r\n", origin, 501, `..."`},
		{"no connection option", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n", origin, 400, "without Connection: upgrade"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: x\r\n" + ws, origin, 400, "needs HTTP/1.1"},
		{"body", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n" + ws, origin, 400, "carries no body"},
		{"route off", "GET / HTTP/1.1\r\nHost: x\r\n" + ws, disabled, 501, "route feed has websocket: false"},
		{"static route", "GET / HTTP/1.1\r\nHost: x\r\n" + ws, static, 501, "route health (static endpoint) does not carry WebSocket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.DisableNormalizing()
			if err := h.Read(bufio.NewReader(strings.NewReader(tt.head + "\r\n"))); err != nil {
				t.Fatal(err)
			}
			status, cat, reason := upgradeRefusal(&h, tt.route)
			if status != tt.status || !strings.Contains(reason, tt.reason) {
				t.Errorf("got %d %s %q, want %d containing %q", status, cat, reason, tt.status, tt.reason)
			}
			if status == 0 && cat != "" {
				t.Errorf("accepted with category %q", cat)
			}
		})
	}
}

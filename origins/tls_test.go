package origins

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/internal/syncbuf"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// insecure_skip_verify is accepted, and every load of the config says
// what it costs, naming the key.
func TestInsecureSkipVerifyIsWarnedAtLoad(t *testing.T) {
	var log syncbuf.Buffer
	cfg := staticConfig("127.0.0.1:9")
	cfg.TLS = tlsconf.ClientConfig{Enabled: true, InsecureSkipVerify: true}
	r, err := NewRegistry(map[string]OriginConfig{"legacy": cfg}, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Update(map[string]OriginConfig{"legacy": cfg}); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if n := strings.Count(out, "key=origins.legacy.tls.insecure_skip_verify"); n != 2 || !strings.Contains(out, "level=WARN") {
		t.Fatalf("want one warning per load, got %d:\n%s", n, out)
	}
}

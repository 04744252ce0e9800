package proxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/floodgate-dev/floodgate/config"
)

// TestRedactedConfigUsesYAMLKeys: /admin/config shows the keys an operator
// writes (snake_case, human units), never Go field names, for every
// section, and hides secrets.
func TestRedactedConfigUsesYAMLKeys(t *testing.T) {
	cfg, err := config.ParseWithEnv([]byte(`
admin: {listen: "127.0.0.1:0", token: s3cret}
origins:
  users:
    instances: [{address: "127.0.0.1:9000"}]
    consul: null
routes:
  - name: users
    match: {path_prefix: /users}
    origin: users
access_log: {enabled: false}
`), "admin.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(Redacted(cfg))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, want := range []string{`"read_header_timeout":"10s"`, `"max_body_size":"64MiB"`, `"timeouts":{"connect":"1s","response":"10s"}`,
		`"consecutive_failures":5`, `"origin":"users"`, `"loadshed":{`, `"access_log":{"enabled":false}`, `"token":"REDACTED"`, `"source":"admin.yaml"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("/admin/config lacks %s:\n%s", want, doc)
		}
	}
	for _, goName := range []string{"ReadHeaderTimeout", "MaxConnsPerInstance", "Instances", "Timeouts", "s3cret"} {
		if strings.Contains(doc, goName) {
			t.Errorf("/admin/config shows %q:\n%s", goName, doc)
		}
	}
}

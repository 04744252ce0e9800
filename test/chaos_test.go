package test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/loadshed"
)

func chaosConfig(originAddr, experiments string) string {
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
origins:
  app: {instances: [{address: %q}]}
routes:
  - {name: app, match: {path_prefix: /}, origin: app}
loadshed:
  chaos:
    experiments:
%s`, originAddr, experiments)
}

// Issue 18 item 5: the same key always lands in the same group, the
// experiment group gets the injected failure, the control group (as large)
// is untouched, both are measured, the experiment ends by itself after its
// duration, and reloads start and stop experiments.
func TestChaosExperimentGroups(t *testing.T) {
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") })
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	const checkout = `      - {name: checkout, key: "header:X-User-Id", fraction: 0.2, action: fail, status: 500, duration: 6s}
`
	writeFile(t, path, chaosConfig(o.addr, checkout))
	p := startProcess(t, path)
	c := httpClient(t)
	get := func(user string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/orders", nil)
		if user != "" {
			req.Header.Set("X-User-Id", user)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	const users = 150
	want := map[loadshed.Group]int{}
	for i := range users {
		user := "user-" + strconv.Itoa(i)
		g := loadshed.GroupOf("checkout", []byte(user), 0.2)
		want[g] += 2
		for range 2 { // the same key, the same group, every time
			resp := get(user)
			switch cat := resp.Header.Get("X-Floodgate-Status"); g {
			case loadshed.GroupExperiment:
				if resp.StatusCode != 500 || cat != "local_shed_chaos" {
					t.Fatalf("%s (experiment group): %d %s, want the injected 500", user, resp.StatusCode, cat)
				}
			default:
				if resp.StatusCode != 200 {
					t.Fatalf("%s (%v group): %d %s, want it untouched", user, g, resp.StatusCode, cat)
				}
			}
		}
	}
	if resp := get(""); resp.StatusCode != 200 {
		t.Fatalf("a request without the key: %d", resp.StatusCode)
	}
	t.Logf("groups: experiment %d, control %d, neither %d requests", want[loadshed.GroupExperiment], want[loadshed.GroupControl], want[loadshed.GroupNone])
	if want[loadshed.GroupExperiment] == 0 || want[loadshed.GroupControl] == 0 {
		t.Fatal("an empty group: pick more users")
	}
	series := func(group, outcome string) string {
		return `floodgate_chaos_requests_total{experiment="checkout",group="` + group + `",outcome="` + outcome + `"}`
	}
	for _, s := range []struct {
		name string
		want int
	}{
		{series("experiment", "injected"), want[loadshed.GroupExperiment]},
		{series("control", "success"), want[loadshed.GroupControl]},
		{series("control", "injected"), 0},
		{series("experiment", "success"), 0},
		{`floodgate_chaos_request_duration_seconds_count{experiment="checkout",group="control"}`, want[loadshed.GroupControl]},
	} {
		if got := metricValue(t, p.adminAddr, s.name); got != float64(s.want) {
			t.Errorf("%s = %v, want %d", s.name, got, s.want)
		}
	}

	// The experiment ends by itself: the gateway says so, and the
	// experiment group is served again.
	p.waitFor(t, "chaos experiment ended", 15*time.Second)
	for i := range users {
		user := "user-" + strconv.Itoa(i)
		if loadshed.GroupOf("checkout", []byte(user), 0.2) == loadshed.GroupExperiment {
			if resp := get(user); resp.StatusCode != 200 {
				t.Fatalf("%s after the experiment ended: %d", user, resp.StatusCode)
			}
		}
	}

	// A reload starts an origin-scoped experiment, another stops it.
	writeFile(t, path, chaosConfig(o.addr, checkout+
		`      - {name: orders-shed, key: "header:X-User-Id", fraction: 0.5, origin: app, action: shed, duration: 1h}
`))
	p.waitFor(t, "chaos experiment started", 15*time.Second)
	member := ""
	for i := 0; member == ""; i++ {
		if u := "user-" + strconv.Itoa(i); loadshed.GroupOf("orders-shed", []byte(u), 0.5) == loadshed.GroupExperiment {
			member = u
		}
	}
	resp := get(member)
	if resp.StatusCode != 503 || resp.Header.Get("X-Floodgate-Shed") != "chaos; experiment=orders-shed; score=50" {
		t.Fatalf("origin experiment member: %d %q", resp.StatusCode, resp.Header.Get("X-Floodgate-Shed"))
	}
	writeFile(t, path, chaosConfig(o.addr, checkout))
	p.waitFor(t, "chaos experiment stopped", 15*time.Second)
	if resp := get(member); resp.StatusCode != 200 {
		t.Fatalf("after the reload removed the experiment: %d", resp.StatusCode)
	}
}

package test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestShedExperimentRejectionCost: what a refused request still costs the gateway, against
// a proxied one. The gateway runs config/example.yaml on one core (GOMAXPROCS=1) with chaos
// shedding every score from 90 up at once (order 25, right after shed_global, so a refusal
// costs what a global shed costs: read and parse, request id, scoring, the 503, the
// outbound filters). Each class runs alone at a rate the core serves easily; the figure is
// the gateway process's CPU time (/proc/<pid>/stat) per request. It decides whether an
// earlier, cheaper rejection would free much CPU when the gateway is CPU-bound.
//
//	FLOODGATE_EXPERIMENT=1 go test ./test -run TestShedExperimentRejectionCost -v
func TestShedExperimentRejectionCost(t *testing.T) {
	experimentOn(t, "TestShedExperimentRejectionCost")
	o := startOrigin(t, newQueueOrigin(100000, time.Microsecond, false).handle)
	// Two gateways: the experiments' config (access log off), and the access log as
	// shipped (its defaults: every success, every failure but sheds past
	// shed_lines_per_second, with the passport), written to a file.
	for _, accessLog := range []bool{false, true} {
		name := "access log off"
		if accessLog {
			name = "access log as shipped"
		}
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) { rejectionCost(t, o.addr, accessLog) })
	}
}

func rejectionCost(t *testing.T, originAddr string, accessLog bool) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(exampleGatewayConfig(t, originAddr)), &doc); err != nil {
		t.Fatal(err)
	}
	if accessLog {
		doc["access_log"] = map[string]any{"enabled": true, "options": map[string]any{"output": filepath.Join(t.TempDir(), "access.log")}}
	}
	chaos := doc["loadshed"].(map[string]any)["chaos"].(map[string]any)
	chaos["enabled"], chaos["min_score"], chaos["max_score"], chaos["fraction"] = true, 90, 100, 1.0
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, string(out))
	p := startProcess(t, path, "GOMAXPROCS=1")
	cpu := func() time.Duration { return processCPU(t, p.cmd.Process.Pid) }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	classes := []struct{ what, class string }{
		{"proxied (play, 15)", "name=play(15) weight=1 path=/api/v1/play/42 header=X-Request-Kind:user"},
		{"refused (telemetry, 95)", "name=telemetry(95) weight=1 method=POST path=/telemetry/v1"},
	}
	perReq := map[string][]float64{}
	for round := 0; round < 3; round++ {
		for _, c := range classes {
			c0 := cpu()
			rep, err := runLoadgen(ctx, loadgenBin, "http://"+p.addr, 2000, 8*time.Second, []string{c.class})
			if err != nil {
				t.Fatal(err)
			}
			us := float64(cpu()-c0) / float64(time.Microsecond) / float64(rep.Total.Sent)
			perReq[c.what] = append(perReq[c.what], us)
			t.Logf("round %d, %s: %d sent, %d ok, %d shed: %.1f µs CPU per request", round+1, c.what, rep.Total.Sent, rep.Total.Succeeded, rep.Total.Shed, us)
		}
	}
	pr, rf := perReq[classes[0].what], perReq[classes[1].what]
	t.Logf("access log on: %v; load average %s; µs CPU per request, proxied %.1f / %.1f / %.1f, refused %.1f / %.1f / %.1f; refused / proxied %.2f / %.2f / %.2f",
		accessLog, loadAverage(), pr[0], pr[1], pr[2], rf[0], rf[1], rf[2], rf[0]/pr[0], rf[1]/pr[1], rf[2]/pr[2])
}

// processCPU is the user+system CPU time process pid has used (/proc/<pid>/stat).
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	ut, _ := strconv.ParseInt(f[11], 10, 64)                 // utime, field 14
	st, _ := strconv.ParseInt(f[12], 10, 64)                 // stime, field 15
	return time.Duration(ut+st) * 10 * time.Millisecond      // USER_HZ = 100
}

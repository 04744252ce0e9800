package test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// runHealth runs `gateway health` and returns its exit code and output.
func runHealth(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(gatewayBin, append([]string{"health"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("health: %v", err)
	return -1, ""
}

// The `health` subcommand is the image's HEALTHCHECK: 0 while the gateway
// is ready, 1 once it is shutting down or gone. It finds the admin
// listener from the same config and environment as the server.
func TestHealthSubcommandFollowsReadiness(t *testing.T) {
	o := startOrigin(t, echoHandler)
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, opsConfig(o.addr, "  lame_duck: 3s", "health-token", ""))
	p := startProcess(t, path)
	// The admin port is only known once it listens; -addr names it, and
	// FLOODGATE_ADMIN_LISTEN stands in for a config that states it.
	if code, out := runHealth(t, nil, "-addr", p.adminAddr); code != 0 || !strings.Contains(out, `"ready"`) {
		t.Fatalf("ready gateway: exit %d: %s", code, out)
	}
	if code, out := runHealth(t, []string{"FLOODGATE_ADMIN_LISTEN=" + p.adminAddr}, "-config", path); code != 0 {
		t.Fatalf("address from config and environment: exit %d: %s", code, out)
	}
	p.signal(t, syscall.SIGTERM)
	p.waitFor(t, "shutting down: lame duck", 5*time.Second)
	if code, out := runHealth(t, nil, "-addr", p.adminAddr); code != 1 || !strings.Contains(out, "shutting down") {
		t.Fatalf("shutting-down gateway: exit %d: %s", code, out)
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, out := runHealth(t, nil, "-addr", p.adminAddr, "-timeout", "1s"); code != 1 {
		t.Fatalf("stopped gateway: exit %d: %s", code, out)
	}
	// A wildcard admin address is asked on loopback.
	if code, out := runHealth(t, []string{"FLOODGATE_ADMIN_LISTEN=0.0.0.0:1", "FLOODGATE_ADMIN_TOKEN=x"}, "-config", path, "-timeout", "1s"); code != 1 || !strings.Contains(out, "127.0.0.1:1") {
		t.Fatalf("wildcard address: exit %d: %s", code, out)
	}
}

// The container files: .dockerignore keeps history and data out of the
// build context, the HEALTHCHECK works without a shell, and the metrics
// example (admin on 0.0.0.0 with a token, Prometheus scraping it) is
// consistent and valid. Docker itself cannot run here.
func TestContainerFiles(t *testing.T) {
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(ignore)))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			patterns[line] = true
		}
	}
	for _, want := range []string{".git", "data/"} {
		if !patterns[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}

	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := strings.ReplaceAll(string(dockerfile), "\\\n", " ")
	var healthcheck string
	for _, line := range strings.Split(df, "\n") {
		if strings.HasPrefix(line, "HEALTHCHECK") {
			healthcheck = line
		}
	}
	// Exec form: the distroless image has no /bin/sh for the shell form.
	if !strings.Contains(healthcheck, `CMD ["/usr/local/bin/floodgate", "health"`) {
		t.Errorf("HEALTHCHECK must run the binary's health subcommand in exec form: %q", healthcheck)
	}
	if !strings.Contains(df, "distroless") {
		t.Error("the runtime image is expected to be distroless")
	}

	// The example validates with a token from the environment, and is
	// refused without one (admin on 0.0.0.0).
	example := "../deploy/docker/floodgate.yaml"
	cmd := exec.Command(gatewayBin, "validate", "-config", example)
	cmd.Env = append(os.Environ(), "FLOODGATE_ADMIN_TOKEN=example-token")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s with a token: %v %s", example, err, out)
	}
	cmd = exec.Command(gatewayBin, "validate", "-config", example)
	cmd.Env = append(os.Environ(), "FLOODGATE_ADMIN_TOKEN=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "admin") {
		t.Errorf("%s without a token must be refused naming admin: %v %s", example, err, out)
	}

	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Authorization struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	raw, err := os.ReadFile("../deploy/docker/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &prom); err != nil {
		t.Fatal(err)
	}
	if len(prom.ScrapeConfigs) != 1 {
		t.Fatalf("scrape configs: %+v", prom.ScrapeConfigs)
	}
	job := prom.ScrapeConfigs[0]
	if job.MetricsPath != "/metrics" || job.Authorization.Type != "Bearer" || job.Authorization.CredentialsFile == "" ||
		len(job.StaticConfigs) != 1 || len(job.StaticConfigs[0].Targets) != 1 || !strings.HasSuffix(job.StaticConfigs[0].Targets[0], ":9901") {
		t.Errorf("scrape config: %+v", job)
	}
	compose, err := os.ReadFile("../deploy/docker/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(compose), job.Authorization.CredentialsFile) || !strings.Contains(string(compose), "FLOODGATE_ADMIN_TOKEN") {
		t.Error("compose.yaml must give Floodgate the token and Prometheus its credentials file")
	}
}

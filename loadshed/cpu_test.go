package loadshed

import (
	"errors"
	"math"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// The command name may contain spaces and parentheses.
	line := "4242 (weird) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 1000 2000000 3000 18446744073709551615\n"
	got, err := parseProcStat([]byte(line))
	if err != nil || got != 325 {
		t.Fatalf("parseProcStat = %d, %v; want 325", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

func TestParseCgroupFiles(t *testing.T) {
	usec, err := parseCPUStat([]byte("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n"))
	if err != nil || usec != 123456 {
		t.Fatalf("parseCPUStat = %d, %v", usec, err)
	}
	if _, err := parseCPUStat([]byte("user_usec 1\n")); err == nil {
		t.Fatal("parseCPUStat without usage_usec accepted")
	}
	if c, ok := parseCPUMax([]byte("150000 100000\n")); !ok || c != 1.5 {
		t.Fatalf("parseCPUMax = %v, %v", c, ok)
	}
	for _, s := range []string{"max 100000\n", "", "0 100000", "x y"} {
		if _, ok := parseCPUMax([]byte(s)); ok {
			t.Errorf("parseCPUMax(%q) reported a quota", s)
		}
	}
	if dir, ok := cgroupDir([]byte("0::/system.slice/gw.service\n"), "/sys/fs/cgroup"); !ok || dir != "/sys/fs/cgroup/system.slice/gw.service" {
		t.Fatalf("cgroupDir = %q, %v", dir, ok)
	}
	if dir, ok := cgroupDir([]byte("0::/\n"), "/sys/fs/cgroup"); !ok || dir != "/sys/fs/cgroup" {
		t.Fatalf("namespaced cgroupDir = %q, %v", dir, ok)
	}
	if dir, ok := cgroupDir([]byte("0::/../../etc\n"), "/sys/fs/cgroup"); !ok || dir != "/sys/fs/cgroup/etc" {
		t.Fatalf("cgroupDir must stay under the mount, got %q", dir)
	}
	if _, ok := cgroupDir([]byte("1:cpu:/x\n"), "/sys/fs/cgroup"); ok {
		t.Fatal("cgroup v1 line taken for v2")
	}
}

func TestProcessCPUSourceReadsThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	src, err := newCPUSource("process")
	if err != nil {
		t.Fatal(err)
	}
	before, cores, err := src.CPUTime()
	if err != nil || cores < 1 {
		t.Fatalf("CPUTime: %v cores=%v", err, cores)
	}
	// Burn CPU until the 10 ms accounting tick moves (bounded).
	deadline := time.Now().Add(5 * time.Second)
	x := 1.0
	for time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			x = math.Sqrt(x + float64(i))
		}
		after, _, err := src.CPUTime()
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
	}
	t.Fatalf("process CPU time did not grow (%v)", x)
}

type failingCPU struct{}

func (failingCPU) Name() string                             { return "broken" }
func (failingCPU) CPUTime() (time.Duration, float64, error) { return 0, 0, errors.New("no accounting") }

func TestCPUSamplerErrorsReadAsZero(t *testing.T) {
	c := cpuSampler{src: failingCPU{}, fixed: true, util: 0.9}
	cfg := CPUSignalConfig{Enabled: true, Threshold: 0.5, Max: 0.9, Source: "auto", SampleEvery: time.Second}
	c.sample(time.Unix(0, 0), &cfg)
	if c.util != 0 || c.err == nil {
		t.Fatalf("util %v err %v: a broken source must read as no load and report its error", c.util, c.err)
	}
}

func TestCPUSamplerRespectsPeriod(t *testing.T) {
	f := &fakeCPU{cores: 4}
	c := cpuSampler{src: f, fixed: true}
	cfg := CPUSignalConfig{Enabled: true, Threshold: 0.5, Max: 0.9, Source: "auto", SampleEvery: time.Second}
	t0 := time.Unix(0, 0)
	c.sample(t0, &cfg)
	f.add(2 * time.Second)
	c.sample(t0.Add(500*time.Millisecond), &cfg) // too early: ignored
	if c.util != 0 {
		t.Fatalf("sampled before the period: %v", c.util)
	}
	c.sample(t0.Add(time.Second), &cfg)
	if c.util != 0.5 {
		t.Fatalf("util = %v, want 2 s / (1 s * 4 cores) = 0.5", c.util)
	}
	f.add(10 * time.Second)
	c.sample(t0.Add(2*time.Second), &cfg)
	if c.util != 1 {
		t.Fatalf("util = %v, want clamped to 1", c.util)
	}
}

// The auto source and, where this machine has cgroup v2, the cgroup source
// must read real accounting.
func TestRealCPUSources(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux accounting")
	}
	src, err := newCPUSource("auto")
	if err != nil {
		t.Fatal(err)
	}
	if _, cores, err := src.CPUTime(); err != nil || cores <= 0 {
		t.Fatalf("auto (%s): cores %v err %v", src.Name(), cores, err)
	}
	cg, err := newCPUSource("cgroup")
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	used, cores, err := cg.CPUTime()
	if err != nil || used <= 0 || cores <= 0 {
		t.Fatalf("cgroup: used %v cores %v err %v", used, cores, err)
	}
	t.Logf("auto picked %s; cgroup used %v over %.2f cores", src.Name(), used, cores)
}

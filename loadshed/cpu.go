package loadshed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// CPUSource reports cumulative CPU time consumed so far and the capacity,
// in cores, it should be measured against. Utilisation is the growth of
// used between two samples divided by wall time times cores.
type CPUSource interface {
	CPUTime() (used time.Duration, cores float64, err error)
	Name() string
}

// userHZ is the unit of utime/stime in /proc/<pid>/stat. Linux fixes
// USER_HZ at 100 for every architecture's user-space ABI.
const userHZ = 100

// procSelfSource reads this process's user+system time from /proc/self/stat.
type procSelfSource struct{ path string }

func (procSelfSource) Name() string { return "process" }

func (p procSelfSource) CPUTime() (time.Duration, float64, error) {
	b, err := os.ReadFile(p.path)
	if err != nil {
		return 0, 0, err
	}
	ticks, err := parseProcStat(b)
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(ticks) * time.Second / userHZ, float64(runtime.GOMAXPROCS(0)), nil
}

// parseProcStat returns utime+stime in clock ticks. The command name (field
// 2) may contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command name")
	}
	fields := bytes.Fields(b[i+1:])
	// After ')' come state (field 3) ... utime (14) and stime (15).
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("proc stat: %d fields after command, want > %d", len(fields), stime)
	}
	u, err1 := strconv.ParseUint(string(fields[utime]), 10, 64)
	s, err2 := strconv.ParseUint(string(fields[stime]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return u + s, nil
}

// cgroupSource reads a cgroup v2 directory's cpu.stat usage and cpu.max
// quota, covering every process in the cgroup (in a container, the
// gateway's whole share of the machine).
type cgroupSource struct{ dir string }

func (cgroupSource) Name() string { return "cgroup" }

func (c cgroupSource) CPUTime() (time.Duration, float64, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cpu.stat"))
	if err != nil {
		return 0, 0, err
	}
	usec, err := parseCPUStat(b)
	if err != nil {
		return 0, 0, err
	}
	cores := float64(runtime.NumCPU())
	if mb, err := os.ReadFile(filepath.Join(c.dir, "cpu.max")); err == nil {
		if q, ok := parseCPUMax(mb); ok {
			cores = q
		}
	}
	return time.Duration(usec) * time.Microsecond, cores, nil
}

func parseCPUStat(b []byte) (uint64, error) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{' '})
		if ok && string(k) == "usage_usec" {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cpu.stat usage_usec: %w", err)
			}
			return n, nil
		}
	}
	return 0, errors.New("cpu.stat: no usage_usec")
}

// parseCPUMax returns quota/period in cores; ok is false for "max" (no
// quota) or anything unparsable.
func parseCPUMax(b []byte) (float64, bool) {
	f := bytes.Fields(b)
	if len(f) != 2 || string(f[0]) == "max" {
		return 0, false
	}
	q, err1 := strconv.ParseFloat(string(f[0]), 64)
	p, err2 := strconv.ParseFloat(string(f[1]), 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return q / p, true
}

// cgroupDir finds this process's cgroup v2 directory from /proc/self/cgroup
// ("0::/path"); with a cgroup namespace the path is "/" and the directory
// is the mount root.
func cgroupDir(procCgroup []byte, mount string) (string, bool) {
	for line := range bytes.SplitSeq(procCgroup, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			return filepath.Join(mount, filepath.Clean("/"+string(bytes.TrimSpace(rest)))), true
		}
	}
	return "", false
}

// newCPUSource picks the source named in config. "auto" prefers the cgroup
// when it carries a CPU quota, because that quota, not the machine, is
// what the gateway runs out of.
func newCPUSource(name string) (CPUSource, error) {
	proc := procSelfSource{path: "/proc/self/stat"}
	if name == "process" {
		return proc, nil
	}
	cg, cgErr := findCgroup()
	switch name {
	case "cgroup":
		return cg, cgErr
	default: // auto
		if cgErr == nil {
			if mb, err := os.ReadFile(filepath.Join(cg.dir, "cpu.max")); err == nil {
				if _, ok := parseCPUMax(mb); ok {
					return cg, nil
				}
			}
		}
		return proc, nil
	}
}

func findCgroup() (cgroupSource, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return cgroupSource{}, err
	}
	dir, ok := cgroupDir(b, "/sys/fs/cgroup")
	if !ok {
		return cgroupSource{}, errors.New("no cgroup v2 entry in /proc/self/cgroup")
	}
	if _, err := os.Stat(filepath.Join(dir, "cpu.stat")); err != nil {
		return cgroupSource{}, err
	}
	return cgroupSource{dir: dir}, nil
}

// cpuSampler turns cumulative CPU time into utilisation over each sampling
// period. Only the ticker goroutine touches it.
type cpuSampler struct {
	src      CPUSource
	fixed    bool // injected by an option; config source changes are ignored
	srcName  string
	lastAt   time.Time
	lastUsed time.Duration
	primed   bool
	util     float64
	err      error
	// seq counts the utilisation samples taken, so a reader knows a new period ended.
	seq uint64
}

// sample updates util if cfg's period has passed.
func (c *cpuSampler) sample(now time.Time, cfg *CPUSignalConfig) {
	if !cfg.Enabled {
		c.util, c.primed, c.err = 0, false, nil
		return
	}
	if !c.fixed && (c.src == nil || c.srcName != cfg.Source) {
		if c.srcName == cfg.Source && c.err != nil && now.Sub(c.lastAt) < cfg.SampleEvery {
			return // a missing source is retried once per period, not per tick
		}
		src, err := newCPUSource(cfg.Source)
		c.srcName, c.primed, c.lastAt = cfg.Source, false, now
		if err != nil {
			c.src, c.util, c.err = nil, 0, err
			return
		}
		c.src, c.err = src, nil
	}
	if c.src == nil || (c.primed && now.Sub(c.lastAt) < cfg.SampleEvery) {
		return
	}
	used, cores, err := c.src.CPUTime()
	if err != nil {
		c.err, c.util, c.primed = err, 0, false
		return
	}
	c.err = nil
	if c.primed {
		wall := now.Sub(c.lastAt).Seconds()
		if wall > 0 && cores > 0 {
			u := (used - c.lastUsed).Seconds() / (wall * cores)
			c.util = min(max(u, 0), 1)
			c.seq++
		}
	}
	c.lastAt, c.lastUsed, c.primed = now, used, true
}

package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

const transferSize = 256 << 20

// procStatusKB reads a field such as VmRSS or VmHWM (in KiB) from
// /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc on this system, cannot measure RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	t.Fatalf("%s not found in /proc/%d/status", field, pid)
	return 0
}

// resetPeakRSS makes VmHWM restart from the current RSS (Linux 4.0+), so
// each transfer's peak is measured on its own.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestLargeTransfersStreamWithBoundedMemory sends 256 MiB up and 256 MiB
// down through a real gateway process and checks its peak RSS grows by
// less than 64 MiB for each: bodies are streamed, never buffered whole.
func TestLargeTransfersStreamWithBoundedMemory(t *testing.T) {
	o := startOrigin(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/download":
			ctx.SetBodyStream(io.LimitReader(zeros{}, transferSize), transferSize)
		case "/upload":
			var n int64
			var err error
			if body := ctx.RequestBodyStream(); body != nil { // nil for a bodiless GET
				n, err = io.Copy(io.Discard, body)
			}
			if err != nil {
				ctx.SetStatusCode(500)
			}
			ctx.SetBodyString(strconv.FormatInt(n, 10))
		}
	})
	path := filepath.Join(t.TempDir(), "floodgate.yaml")
	writeFile(t, path, strings.Replace(processConfig(o.addr, "v"), "drain_timeout: 10s", "drain_timeout: 10s\n  max_body_size: 512MiB", 1))
	p := startProcess(t, path)
	pid := p.cmd.Process.Pid
	c := httpClient(t)

	// Warm up the paths once so the baseline includes pools and buffers.
	if resp, err := c.Get("http://" + p.addr + "/o/upload"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	base := procStatusKB(t, pid, "VmRSS")
	resetPeakRSS(pid)
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/o/upload", io.LimitReader(zeros{}, transferSize))
	req.ContentLength = transferSize
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != strconv.Itoa(transferSize) {
		t.Fatalf("upload: %d, origin received %s bytes", resp.StatusCode, got)
	}
	upPeak := procStatusKB(t, pid, "VmHWM")

	base2 := procStatusKB(t, pid, "VmRSS")
	resetPeakRSS(pid)
	resp, err = c.Get("http://" + p.addr + "/o/download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != transferSize {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	downPeak := procStatusKB(t, pid, "VmHWM")

	upGrowth := float64(upPeak-base) / 1024
	downGrowth := float64(downPeak-base2) / 1024
	t.Logf("256 MiB upload: RSS %0.1f MiB -> peak %0.1f MiB (+%0.1f MiB)", float64(base)/1024, float64(upPeak)/1024, upGrowth)
	t.Logf("256 MiB download: RSS %0.1f MiB -> peak %0.1f MiB (+%0.1f MiB)", float64(base2)/1024, float64(downPeak)/1024, downGrowth)
	if upGrowth >= 64 || downGrowth >= 64 {
		t.Fatalf("peak RSS grew by %.1f MiB (upload) / %.1f MiB (download); limit is 64 MiB", upGrowth, downGrowth)
	}
}

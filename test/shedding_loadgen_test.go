package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"
)

// cmd/loadgen as the shedding experiments run it: one process per traffic
// kind and phase, open loop, its -json report parsed. The experiments
// themselves are in shedding_scenario_test.go.

// loadgenReport is the part of cmd/loadgen's -json report used here.
type loadgenReport struct {
	// cpu is the CPU time the loadgen process used (it shares the machine with the gateway).
	cpu          time.Duration
	AchievedRate float64 `json:"achieved_rate_per_s"`
	MaxLagMs     float64 `json:"max_lag_ms"`
	Classes      []struct {
		Name      string  `json:"name"`
		Scheduled uint64  `json:"scheduled"`
		Succeeded uint64  `json:"succeeded"`
		Shed      uint64  `json:"shed"`
		Errors    uint64  `json:"errors"`
		Dropped   uint64  `json:"dropped_by_generator"`
		P50Ms     float64 `json:"p50_ms"`
		P99Ms     float64 `json:"p99_ms"`
	} `json:"classes"`
	Total struct {
		Scheduled   uint64            `json:"scheduled"`
		Sent        uint64            `json:"sent"`
		Succeeded   uint64            `json:"succeeded"`
		Shed        uint64            `json:"shed"`
		Errors      uint64            `json:"errors"`
		Dropped     uint64            `json:"dropped_by_generator"`
		P50Ms       float64           `json:"p50_ms"`
		P99Ms       float64           `json:"p99_ms"`
		ShedByScope map[string]uint64 `json:"shed_by_scope"`
		ErrorKinds  map[string]uint64 `json:"error_kinds"`
	} `json:"total"`
}

func runLoadgen(ctx context.Context, bin, target string, rate float64, d time.Duration, classes []string) (*loadgenReport, error) {
	args := []string{"-target", target, "-rate", fmt.Sprint(rate), "-duration", d.String(), "-timeout", "5s", "-json"}
	for _, c := range classes {
		args = append(args, "-class", c)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("loadgen: %v: %s", err, stderr.String())
	}
	var r loadgenReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("loadgen output: %v: %s", err, stdout.String())
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return &r, nil
}

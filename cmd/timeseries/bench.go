package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/tsbench"
)

// runBench is `timeseries bench`: the store's acceptance figures as one table (see
// timeseries/README.md, Benchmarks). It is bounded by -events and -phase.
func runBench(args []string, stdout, stderr io.Writer) error {
	var o tsbench.Options
	fs := flag.NewFlagSet("timeseries bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Dir, "data", "", "data directory (default: a temporary one, removed afterwards)")
	fs.IntVar(&o.IngestEvents, "events", 1_000_000, "events ingested fire-and-forget (also the aggregation data set)")
	fs.IntVar(&o.Producers, "producers", 4, "concurrent async producers")
	fs.IntVar(&o.Batch, "batch", 500, "events per async request")
	fs.DurationVar(&o.PhaseTime, "phase", 5*time.Second, "duration of each latency phase")
	fs.StringVar(&o.ProfileDir, "cpuprofile-dir", "", "write one CPU profile per phase into this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	_, err := tsbench.Run(o, stdout)
	return err
}

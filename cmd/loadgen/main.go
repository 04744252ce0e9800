// Command loadgen is an open-loop HTTP load generator for Floodgate
// experiments. Requests are fired at a constant arrival rate whether or not
// earlier ones have answered (unlike closed-loop tools such as wrk, so
// overload is real), drawn from weighted request classes, and reported per
// class: sent, succeeded, shed by the gateway (503 with X-Floodgate-Shed),
// other errors, dropped by the generator's own outstanding cap, and
// p50/p99 latency of successes.
//
//	loadgen -target http://127.0.0.1:8080 -rate 500 -duration 30s \
//	  -class 'name=play weight=1 path=/api/v1/play header=X-Request-Kind:user' \
//	  -class 'name=prefetch weight=12 path=/prefetch/home'
//
// or -classes classes.yaml with
//
//	classes:
//	  - {name: play, weight: 1, method: GET, path: /api/v1/play, headers: {X-Request-Kind: user}}
//	  - {name: prefetch, weight: 12, path: /prefetch/home}
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type classFlags []string

func (c *classFlags) String() string     { return fmt.Sprint(*c) }
func (c *classFlags) Set(s string) error { *c = append(*c, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		stop()
		os.Exit(2)
	}
}

// realMain parses args and runs; tweak (tests only) adjusts the options
// after parsing.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer, tweak func(*options)) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o         options
		classes   classFlags
		classFile string
		asJSON    bool
	)
	fs.StringVar(&o.Target, "target", "http://127.0.0.1:8080", "base URL; class paths are appended")
	fs.Float64Var(&o.Rate, "rate", 100, "arrival rate in requests/s across all classes")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to keep scheduling (0: bounded by -count only)")
	fs.Int64Var(&o.Count, "count", 0, "maximum requests to schedule (0: bounded by -duration only)")
	fs.IntVar(&o.MaxOutstanding, "max-outstanding", 1000, "cap on requests in flight; requests due beyond it are dropped and counted")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "per-request timeout")
	fs.BoolVar(&o.AllowRemote, "allow-remote", false, "allow a non-loopback target")
	fs.Var(&classes, "class", "request class 'name=N weight=W method=M path=/p header=K:V ...' (repeatable)")
	fs.StringVar(&classFile, "classes", "", "YAML or JSON file with a classes: list (instead of -class)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case classFile != "" && len(classes) > 0:
		return errors.New("use -class or -classes, not both")
	case classFile != "":
		cs, err := loadClassFile(classFile)
		if err != nil {
			return err
		}
		o.Classes = cs
	case len(classes) > 0:
		for _, s := range classes {
			c, err := parseClassFlag(s)
			if err != nil {
				return err
			}
			o.Classes = append(o.Classes, c)
		}
	default:
		o.Classes = []Class{{Name: "default", Weight: 1, Method: "GET", Path: "/"}}
	}
	if tweak != nil {
		tweak(&o)
	}
	rep, err := run(ctx, o)
	if err != nil {
		return err
	}
	if asJSON {
		return rep.writeJSON(stdout)
	}
	return rep.writeText(stdout)
}

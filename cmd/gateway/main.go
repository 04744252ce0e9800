// Command gateway runs Floodgate, the edge gateway.
//
//	gateway [-config FILE]            serve (embedded default config without -config)
//	gateway validate -config FILE     check a config and exit non-zero on errors, like nginx -t
//	gateway health [-config FILE]     ask the running gateway's /readyz (container health check)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "validate" {
		return validate(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "health" {
		return health(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("FLOODGATE_CONFIG"), "config file (YAML); default: the embedded config. Env: FLOODGATE_CONFIG")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *configPath, logger); err != nil {
		logger.Error("gateway failed", "error", err)
		return 1
	}
	return 0
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("FLOODGATE_CONFIG"), "config file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "validate: -config FILE is required")
		return 2
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg, snapErr := loadAndBuild(*configPath, logger)
	if snapErr != nil {
		fmt.Fprintln(stderr, snapErr)
		return 1
	}
	fmt.Fprintf(stdout, "%s: configuration is valid (%d routes, %d origins)\n", *configPath, len(cfg.Routes), len(cfg.Origins))
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New("-log-format: want text or json")
}

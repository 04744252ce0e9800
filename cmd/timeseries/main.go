// Command timeseries runs the TimeSeries event store as a standalone HTTP server: the same
// API the gateway serves under its route prefix (POST {prefix}{Operation}), backed by the
// embedded pebble engine. With no arguments it serves the "demo" namespace from
// ./data/timeseries on :8090 under /ts/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
)

func main() {
	runFn := run
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "bench" {
		runFn, args = runBench, args[1:]
	}
	if err := runFn(args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "timeseries:", err)
		os.Exit(1)
	}
}

type options struct {
	listen          string
	dataDir         string
	namespacesFile  string
	prefix          string
	shutdownTimeout time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("timeseries", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", ":8090", "address to listen on")
	fs.StringVar(&o.dataDir, "data", "data/timeseries", "data directory of the embedded store")
	fs.StringVar(&o.namespacesFile, "namespaces", "", "YAML file with the store config (namespaces: {name: {...}}); empty serves the demo namespace")
	fs.StringVar(&o.prefix, "prefix", "/ts/", "URL path prefix of the API")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for requests and queue flushes")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

// reload re-reads the namespaces file and applies it live (Service.Reconfigure). A file that
// does not load or validate keeps the running config; either way the outcome is logged.
func reload(svc *timeseries.Service, path string, logger *log.Logger) {
	if path == "" {
		logger.Printf("reload: no -namespaces file; nothing to reload")
		return
	}
	cfg, err := loadConfig(path)
	if err == nil {
		err = svc.Reconfigure(cfg)
	}
	if err != nil {
		logger.Printf("reload failed, keeping the running config: %v", err)
		return
	}
	logger.Printf("config reloaded from %s: serving namespaces %v", path, svc.Namespaces())
}

// run serves until SIGINT/SIGTERM (SIGHUP reloads the config), then stops accepting, drains in-flight requests, flushes
// the async queues durably and closes the store.
func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	// Catch signals before announcing the address, so a supervisor that signals right after
	// the announcement still gets a graceful shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the config, as it does for the gateway; left to its default it would
	// kill the process without flushing the async queues.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	logger := log.New(stderr, "timeseries: ", log.LstdFlags|log.Lmicroseconds)
	cfg := timeseries.DemoConfig()
	if o.namespacesFile != "" {
		if cfg, err = loadConfig(o.namespacesFile); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	svc, err := timeseries.Open(o.dataDir, cfg, timeseries.WithLogf(logger.Printf))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), svc.Close(context.Background()))
	}
	// The first stdout line announces the bound address (useful with -listen :0).
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	logger.Printf("serving namespaces %v under %s from %s", svc.Namespaces(), o.prefix, o.dataDir)

	srv := newServer(svc, o.prefix, logger)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	for done := false; !done; {
		select {
		case err = <-serveErr:
			err = fmt.Errorf("serve: %w", err)
			done = true
		case <-ctx.Done():
			logger.Printf("shutting down")
			done = true
		case <-hup:
			reload(svc, o.namespacesFile, logger)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	shutErr := srv.ShutdownWithContext(sctx)
	closeErr := svc.Close(sctx)
	if closeErr == nil {
		logger.Printf("store closed cleanly")
	}
	return errors.Join(err, shutErr, closeErr)
}

package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/floodgate-dev/floodgate/config"
)

// health is the container health check (Docker HEALTHCHECK in a
// distroless image has no shell or curl): it asks the running gateway's
// admin /readyz and exits 0 when it answers 200, 1 otherwise.
//
//	gateway health [-config FILE] [-addr HOST:PORT] [-path /readyz] [-timeout 2s]
//
// Without -addr the admin address comes from the config (the same file
// and FLOODGATE_* environment the gateway reads); a wildcard host is asked
// on loopback.
func health(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("FLOODGATE_CONFIG"), "config file to read admin.listen from; default: the embedded config")
	addr := fs.String("addr", "", "admin address to ask (default: admin.listen from the config)")
	path := fs.String("path", "/readyz", "endpoint to ask: /readyz (ready for traffic) or /healthz (alive)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" {
		cfg, err := config.Load(*configPath)
		if err != nil {
			fmt.Fprintf(stderr, "health: %v\n", err)
			return 2
		}
		if cfg.Admin.Listen == "" {
			fmt.Fprintln(stderr, "health: admin.listen is empty; nothing to ask (pass -addr)")
			return 2
		}
		*addr = cfg.Admin.Listen
	}
	url := "http://" + dialable(*addr) + *path
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "health: %s: %v\n", url, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "health: %s: %d %s\n", url, resp.StatusCode, body)
		return 1
	}
	fmt.Fprintf(stdout, "health: %s: %s", url, body)
	return 0
}

// dialable turns a listen address into one to connect to: an empty or
// wildcard host becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

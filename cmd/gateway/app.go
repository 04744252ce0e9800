package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/floodgate-dev/floodgate/config"
	"github.com/floodgate-dev/floodgate/decode"
	"github.com/floodgate-dev/floodgate/filters/passport"
	"github.com/floodgate-dev/floodgate/proxy"
	"github.com/floodgate-dev/floodgate/proxy/dashboard"
)

// demoOriginAddr is where the embedded config expects the demo origin.
const demoOriginAddr = "127.0.0.1:8081"

// app wires the gateway: config, runtime, server and reload.
type app struct {
	path   string
	logger *slog.Logger
	rt     *runtime
	server *proxy.Server
	mu     sync.Mutex // serializes reloads
}

// loadAndBuild loads a config and builds a snapshot from it, which is the
// full check `validate` runs and a reload must pass.
// Every problem is reported at once: a config that breaks validation rules
// is still built, so unknown filters and bad endpoint options are listed
// with them.
func loadAndBuild(path string, logger *slog.Logger) (*config.Config, error) {
	cfg, loadErr := config.LoadForCheck(path)
	if cfg == nil {
		return nil, loadErr
	}
	rt, err := newRuntime(logger, cfg, true)
	if err != nil {
		return nil, errors.Join(loadErr, err)
	}
	defer rt.close()
	var problems decode.Errors
	if ve, ok := decode.AsErrors(loadErr); ok {
		problems.Merge("", ve)
	} else {
		problems.Merge("", loadErr)
	}
	if _, err := rt.build(cfg); err != nil {
		problems.Merge("", err)
	}
	problems.Dedupe()
	if err := problems.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func serve(ctx context.Context, path string, logger *slog.Logger) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if path == "" {
		// The embedded config's example route needs its demo origin.
		demo, ln, err := startDemoOrigin(demoOriginAddr)
		if err != nil {
			logger.Warn("demo origin not started; the /demo route will answer 502", "addr", demoOriginAddr, "error", err)
		} else {
			logger.Info("demo origin started (embedded config only)", "addr", ln.Addr().String())
			defer demo.Shutdown()
		}
	}
	rt, err := newRuntime(logger, cfg, false)
	if err != nil {
		return err
	}
	a := &app{path: path, logger: logger, rt: rt}
	defer a.rt.close()
	snap, err := a.rt.build(cfg)
	if err != nil {
		return err
	}
	if err := a.rt.activate(cfg, func() { a.server = proxy.NewServer(a.rt.builder, snap, logger) }); err != nil {
		return err
	}
	a.rt.attach(a.server)
	tlsCfg := cfg.Server.TLS
	if tlsCfg.Enabled() {
		if err := a.rt.startTLS(tlsCfg, a.server); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return err
	}
	if r := tlsCfg.Redirect.Listen; tlsCfg.Enabled() && r != "" {
		rln, err := net.Listen("tcp", r)
		if err != nil {
			ln.Close()
			return fmt.Errorf("server.tls.redirect.listen: %w", err)
		}
		go func() {
			if err := a.server.ServeRedirect(rln, proxy.RedirectPort(tlsCfg.Redirect, cfg.Server.Listen)); err != nil {
				logger.Error("https redirect listener stopped", "error", err)
			}
		}()
		logger.Info("redirecting plain HTTP to https", "addr", rln.Addr().String())
	}
	if cfg.Admin.Listen != "" {
		adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin.listen: %w", err)
		}
		dash := a.rt.dashboardSources()
		admin := &proxy.Admin{
			Server:  a.server,
			Token:   cfg.Admin.Token,
			Metrics: a.rt.metrics.Handler(),
			Ready:   a.rt.readiness,
			Sections: map[string]func() any{
				"origins":        a.rt.originsView,
				"origin_groups":  a.rt.groupsView,
				"shed":           func() any { return a.rt.shedder.Snapshot() },
				"dashboard.json": func() any { return dash.Document() },
				"ratelimit":      func() any { return a.rt.limiters.Snapshot() },
			},
			Handlers:  map[string]http.Handler{passport.AdminPattern: passport.AdminHandler(a.rt.passports)},
			LiveToken: func() string { return a.server.Snapshot().Config.Admin.Token },
			Dashboard: dashboard.Handler(),
		}
		adminSrv := proxy.ServeAdmin(adminLn, admin.Handler())
		defer adminSrv.Close()
		logger.Info("admin listening", "addr", adminLn.Addr().String())
	}

	if path != "" {
		watchCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		if err := config.Watch(watchCtx, path, a.reload); err != nil {
			logger.Warn("config file watch unavailable; reload with SIGHUP", "error", err)
		}
	}
	defer a.watchSignals()()

	// Announced only once the watcher is armed, so a change made right after
	// start-up is never missed.
	logger.Info("floodgate listening", "addr", ln.Addr().String(), "tls", tlsCfg.Enabled(), "config", cfg.Source,
		"routes", len(cfg.Routes), "origins", len(cfg.Origins))
	served := make(chan error, 1)
	go func() {
		if a.rt.tls != nil {
			served <- a.server.ServeTLS(ln, a.rt.tls)
			return
		}
		served <- a.server.Serve(ln)
	}()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	return a.stop(served)
}

// reload re-reads the config file. A config that fails to load, build or
// activate leaves everything as it was.
func (a *app) reload() {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, err := config.Load(a.path)
	if err == nil {
		err = a.apply(cfg)
	}
	if err != nil {
		a.rt.metrics.ConfigReload(false)
		a.logger.Error("config reload failed; keeping the running config", "config", a.path, "error", err)
		return
	}
	a.rt.metrics.ConfigReload(true)
	a.logger.Info("config reloaded", "config", cfg.Source, "routes", len(cfg.Routes), "origins", len(cfg.Origins))
}

// apply makes cfg current, transactionally: everything is built first
// (routes, chains, filter instances), then every change outside the
// snapshot is checked, then applied, and the snapshot swapped in last.
func (a *app) apply(cfg *config.Config) error {
	snap, err := a.rt.build(cfg)
	if err != nil {
		return err
	}
	return a.rt.activate(cfg, func() {
		old := a.server.Snapshot().Config
		for _, key := range restartOnlyChanges(old, cfg) {
			a.logger.Warn("config key changed but needs a restart to take effect", "key", key)
		}
		a.server.Swap(snap)
	})
}

// restartOnlyChanges lists the keys whose new values the running server
// cannot apply.
func restartOnlyChanges(old, cur *config.Config) []string {
	var keys []string
	o, n := old.Server, cur.Server
	check := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}
	check("server.listen", o.Listen != n.Listen)
	check("server.read_header_timeout", o.ReadHeaderTimeout != n.ReadHeaderTimeout)
	check("server.idle_timeout", o.IdleTimeout != n.IdleTimeout)
	check("server.write_timeout", o.WriteTimeout != n.WriteTimeout)
	check("server.max_header_size", o.MaxHeaderSize != n.MaxHeaderSize)
	check("server.max_connections", o.MaxConnections != n.MaxConnections)
	check("server.max_connections_per_ip", o.MaxConnectionsPerIP != n.MaxConnectionsPerIP)
	check("server.write_progress_timeout", o.WriteProgressTimeout != n.WriteProgressTimeout)
	check("admin.listen", old.Admin.Listen != cur.Admin.Listen)
	check("server.tls (on or off)", o.TLS.Enabled() != n.TLS.Enabled())
	check("server.tls.handshake_timeout", o.TLS.HandshakeTimeout != n.TLS.HandshakeTimeout)
	check("server.tls.redirect", o.TLS.Redirect != n.TLS.Redirect)
	return keys
}

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/floodgate-dev/floodgate/proxy"
)

// watchSignals handles the operator's signals until the returned stop is
// called:
//
//	SIGHUP   reload the config file (if any) and reopen access-log files
//	SIGUSR1  reopen access-log files (after logrotate moved them)
//
// It is installed for every config, the embedded one included: an
// unhandled SIGHUP would terminate the process.
func (a *app) watchSignals() (stop func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-ch:
				a.onSignal(sig)
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
		<-done
	}
}

func (a *app) onSignal(sig os.Signal) {
	switch sig {
	case syscall.SIGHUP:
		if a.path == "" {
			a.logger.Info("SIGHUP: the embedded config cannot change; nothing to reload")
		} else {
			a.reload()
		}
		a.reopenAccessLogs("SIGHUP")
	case syscall.SIGUSR1:
		a.reopenAccessLogs("SIGUSR1")
	}
}

// reopenAccessLogs reopens every access-log file at its path, so lines go
// to a fresh file once a rotator has renamed the old one.
func (a *app) reopenAccessLogs(why string) {
	if err := a.rt.outputs.Reopen(); err != nil {
		a.logger.Error("reopening access log files failed; still writing to the old ones", "signal", why, "error", err)
		return
	}
	a.logger.Info("access log files reopened", "signal", why)
}

// stop runs the shutdown sequence once SIGINT or SIGTERM arrived: /readyz
// turns 503 at once, the listener keeps serving for server.lame_duck (a
// second signal ends it early), then in-flight requests drain for up to
// server.drain_timeout. served is the Serve goroutine's result.
func (a *app) stop(served <-chan error) error {
	sc := a.server.Snapshot().Config.Server
	again, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	err := a.server.GracefulStop(again, sc.LameDuck, sc.DrainTimeout, a.logger)
	if serveErr := <-served; serveErr != nil && err == nil {
		err = serveErr
	}
	if err != nil && err != proxy.ErrDrainTimeout {
		return err
	}
	a.logger.Info("shutdown complete")
	return nil
}

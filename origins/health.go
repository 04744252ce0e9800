package origins

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/floodgate-dev/floodgate/tlsconf"
)

// Prober performs one health check against addr (host:port) and returns the HTTP
// status. It lets origins check instances without depending on the proxy's client.
type Prober func(ctx context.Context, addr, path string) (status int, err error)

// HTTPProber is the default Prober, built on net/http with its own connection pool.
// Close it to release idle connections.
type HTTPProber struct {
	transport *http.Transport
	client    *http.Client
	scheme    string
}

// NewHTTPProber returns a prober whose dials time out after dialTimeout.
func NewHTTPProber(dialTimeout time.Duration) *HTTPProber {
	return NewHTTPSProber(dialTimeout, nil)
}

// NewHTTPSProber returns a prober that speaks TLS with the origin's own
// settings (src: each new connection uses the files as they are now), so
// a health check verifies exactly what a request would; nil means plain
// HTTP. An empty server_name verifies the instance's host.
func NewHTTPSProber(dialTimeout time.Duration, src *tlsconf.ClientSource) *HTTPProber {
	d := &net.Dialer{Timeout: dialTimeout}
	t := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	scheme := "http"
	if src != nil {
		scheme = "https"
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			cfg, err := src.Config()
			if err != nil {
				return nil, fmt.Errorf("origin TLS settings: %w", err)
			}
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, tlsconf.ForAddr(cfg, addr))
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	return &HTTPProber{transport: t, scheme: scheme, client: &http.Client{
		Transport: t,
		// A health endpoint that redirects is misconfigured; report its status as is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Probe sends GET http://addr/path (https with TLS) and returns the status.
func (p *HTTPProber) Probe(ctx context.Context, addr, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.scheme+"://"+addr+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "floodgate-health-check")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drain a little so the connection can be reused, but never read a huge body.
	var buf [512]byte
	for i := 0; i < 8; i++ {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Close releases idle connections.
func (p *HTTPProber) Close() { p.transport.CloseIdleConnections() }

// proberFor returns the health checks' prober for an origin with TLS
// settings t, and what to call when its checks stop. An origin with TLS
// gets its own HTTPS prober; a Prober given in Options is used as is.
func (r *Registry) proberFor(t tlsconf.ClientConfig) (Prober, func()) {
	if !t.Enabled || r.prober == nil {
		return r.opts.Prober, func() {}
	}
	p := NewHTTPSProber(time.Second, tlsconf.NewClientSource(t))
	return p.Probe, p.Close
}

// maxParallelProbes bounds concurrent probes per origin per round.
const maxParallelProbes = 8

// runHealthChecks probes every instance each interval until ctx is done. An instance
// turns unhealthy after UnhealthyThreshold consecutive failed probes and healthy again
// after HealthyThreshold consecutive good ones; instances start healthy because
// discovery (or the operator) already vouched for them.
func (o *Origin) runHealthChecks(ctx context.Context, cfg HealthCheckConfig, probe Prober) {
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		o.healthRound(ctx, cfg, probe)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *Origin) healthRound(ctx context.Context, cfg HealthCheckConfig, probe Prober) {
	list := o.snap.Load().list
	ok := make([]bool, len(list))
	sem := make(chan struct{}, maxParallelProbes)
	var wg sync.WaitGroup
	for i, in := range list {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			status, err := probe(pctx, in.addr, cfg.Path)
			ok[i] = err == nil && status == cfg.ExpectedStatus
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // a shutdown is not a failed probe
	}
	// Streaks are only touched here, by the single checker goroutine.
	for i, in := range list {
		if ok[i] {
			in.hcOK++
			in.hcFail = 0
			if !in.healthy.Load() && in.hcOK >= cfg.HealthyThreshold {
				o.setHealthy(in, true)
			}
		} else {
			in.hcFail++
			in.hcOK = 0
			if in.healthy.Load() && in.hcFail >= cfg.UnhealthyThreshold {
				o.setHealthy(in, false)
			}
		}
	}
}

func (o *Origin) setHealthy(in *Instance, healthy bool) {
	in.healthy.Store(healthy)
	if healthy {
		o.log.Info("instance healthy", "origin", o.name, "instance", in.addr)
	} else {
		o.log.Warn("instance unhealthy", "origin", o.name, "instance", in.addr)
	}
	if o.hooks.OnHealthChange != nil {
		o.hooks.OnHealthChange(o.name, in.addr, healthy)
	}
	o.notify()
}

package origins

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// ConsulWatcher follows the passing instances of one Consul service with blocking
// queries on /v1/health/service/<service> and hands every new set to a callback.
// While Consul is unreachable or failing, it backs off exponentially with jitter and
// the last set stays in force.
type ConsulWatcher struct {
	cfg       ConsulConfig
	client    *api.Client
	transport *http.Transport
	log       *slog.Logger
	set       func([]InstanceConfig)
	// OnEmptyKept, if set, is called each time an empty answer was not
	// applied and the last non-empty set kept (see ConsulConfig.AllowEmpty).
	OnEmptyKept func()
	// Current, if set, reports how many instances the origin has now. The
	// drop-to-zero guard uses it rather than the watcher's own memory, so a
	// watcher restarted by a reload (a new token, say) still protects the
	// set its predecessor found.
	Current func() int
}

// NewConsulWatcher builds a watcher; set is called with each new instance set, from
// the Run goroutine.
func NewConsulWatcher(cfg ConsulConfig, log *slog.Logger, set func([]InstanceConfig)) (*ConsulWatcher, error) {
	// A transport of our own, so stopping the watcher can close its idle connections.
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	ac := api.DefaultNonPooledConfig()
	ac.Transport = t
	ac.HttpClient = &http.Client{Transport: t}
	ac.Address = cfg.Address
	if scheme, host, ok := strings.Cut(cfg.Address, "://"); ok {
		ac.Scheme, ac.Address = scheme, host
	}
	ac.Datacenter = cfg.Datacenter
	ac.Token = cfg.Token
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("consul client: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return &ConsulWatcher{cfg: cfg, client: client, transport: t, log: log, set: set}, nil
}

// Run watches until ctx is done.
func (w *ConsulWatcher) Run(ctx context.Context) {
	defer w.transport.CloseIdleConnections()
	var (
		index    uint64
		failures int
		applied  bool
		lastLen  int // size of the set last applied
	)
	for ctx.Err() == nil {
		entries, lastIndex, filtered, err := w.query(ctx, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			d := backoff(w.cfg.BackoffMin, w.cfg.BackoffMax, failures)
			w.log.Warn("consul query failed; keeping last known instances",
				"service", w.cfg.Service, "error", err, "failures", failures, "retry_in", d)
			if !sleepCtx(ctx, d) {
				return
			}
			continue
		}
		if failures > 0 {
			w.log.Info("consul query recovered", "service", w.cfg.Service, "after_failures", failures)
		}
		failures = 0
		switch {
		case lastIndex < index:
			// The index went backwards (snapshot restore, new cluster): the next query
			// must not block on an index Consul will not reach soon.
			index = 0
		case lastIndex == 0:
			// Consul never returns 0 for a real index; treat it as 1 so we still block.
			index = 1
		default:
			if lastIndex == index && applied {
				continue // wait expired without a change
			}
			index = lastIndex
		}
		set := toInstances(entries)
		applied = true
		if len(set) == 0 {
			if filtered {
				w.log.Warn("consul filtered the service's instances out by ACL: the token lacks service:read on it",
					"service", w.cfg.Service)
			}
			current := lastLen
			if w.Current != nil {
				current = w.Current()
			}
			if !w.cfg.AllowEmpty && current > 0 {
				w.log.Warn("consul reports no passing instances; keeping the last known set (set consul.allow_empty to apply an empty answer)",
					"service", w.cfg.Service, "tag", w.cfg.Tag, "kept", current, "acl_filtered", filtered)
				if w.OnEmptyKept != nil {
					w.OnEmptyKept()
				}
				continue
			}
			w.log.Warn("consul reports no passing instances", "service", w.cfg.Service, "tag", w.cfg.Tag, "acl_filtered", filtered)
		}
		w.set(set)
		lastLen = len(set)
	}
}

// query runs one (blocking) health query; filtered reports that Consul left
// results out because of the token's ACL policy.
func (w *ConsulWatcher) query(ctx context.Context, index uint64) (_ []*api.ServiceEntry, _ uint64, filtered bool, _ error) {
	// Consul answers a blocking query within wait plus up to wait/16 of jitter; past
	// that, a silent server is a failure rather than something to wait on forever.
	qctx, cancel := context.WithTimeout(ctx, w.cfg.Wait+w.cfg.Wait/16+5*time.Second)
	defer cancel()
	q := (&api.QueryOptions{
		Datacenter: w.cfg.Datacenter,
		Token:      w.cfg.Token,
		WaitIndex:  index,
		WaitTime:   w.cfg.Wait,
	}).WithContext(qctx)
	entries, meta, err := w.client.Health().Service(w.cfg.Service, w.cfg.Tag, true, q)
	if err != nil {
		return nil, 0, false, err
	}
	return entries, meta.LastIndex, meta.ResultsFilteredByACLs, nil
}

// toInstances maps entries to instances: the service address, else the node address,
// with the service port and its passing weight.
func toInstances(entries []*api.ServiceEntry) []InstanceConfig {
	out := make([]InstanceConfig, 0, len(entries))
	for _, e := range entries {
		if e == nil || e.Service == nil || e.Service.Port <= 0 || e.Service.Port > 65535 {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		if host == "" {
			continue
		}
		out = append(out, InstanceConfig{
			Address: net.JoinHostPort(host, strconv.Itoa(e.Service.Port)),
			Weight:  e.Service.Weights.Passing,
		})
	}
	return out
}

// backoff is exponential from lo, capped at hi, with "equal jitter": half fixed, half
// random, so a fleet of gateways does not retry Consul in lockstep.
func backoff(lo, hi time.Duration, failures int) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// shedHeader marks a response the gateway rejected on purpose.
const shedHeader = "X-Floodgate-Shed"

// options configure one run.
type options struct {
	Target         string
	Rate           float64       // requests per second, across all classes
	Duration       time.Duration // stop scheduling after this (0: only Count bounds)
	Count          int64         // stop after this many scheduled requests (0: only Duration bounds)
	MaxOutstanding int           // requests in flight at once; beyond it, drop and count
	Timeout        time.Duration // per request
	AllowRemote    bool
	Classes        []Class

	idleConn      time.Duration // keep-alive idle time; tests shorten it
	afterSchedule func()        // test hook: the scheduler has stopped
}

func (o *options) validate() (*url.URL, error) {
	var errs []error
	u, err := url.Parse(o.Target)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("-target: %w", err))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("-target: scheme must be http or https, got %q", u.Scheme))
	case u.Host == "":
		errs = append(errs, errors.New("-target: host is required"))
	case !o.AllowRemote && !isLoopback(u.Hostname()):
		errs = append(errs, fmt.Errorf("-target: %q is not a loopback address; pass -allow-remote to load a remote host", u.Hostname()))
	}
	if !(o.Rate > 0) || o.Rate > 1e6 {
		errs = append(errs, fmt.Errorf("-rate: must be in (0, 1e6] requests/s, got %v", o.Rate))
	}
	if o.Duration < 0 || o.Count < 0 {
		errs = append(errs, errors.New("-duration and -count must not be negative"))
	}
	if o.Duration == 0 && o.Count == 0 {
		errs = append(errs, errors.New("set -duration, -count or both: an unbounded run is refused"))
	}
	if o.MaxOutstanding < 1 || o.MaxOutstanding > 1_000_000 {
		errs = append(errs, fmt.Errorf("-max-outstanding: must be 1..1000000, got %d", o.MaxOutstanding))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout: must be positive, got %s", o.Timeout))
	}
	if err := validateClasses(o.Classes); err != nil {
		errs = append(errs, err)
	}
	return u, errors.Join(errs...)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// classStats are updated concurrently by request goroutines.
type classStats struct {
	scheduled, sent, succeeded, shed, errs, dropped atomic.Uint64
	latency                                         histogram

	mu          sync.Mutex
	shedByScope map[string]uint64
	errorKinds  map[string]uint64
}

func (s *classStats) countKind(m *map[string]uint64, k string) {
	s.mu.Lock()
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[k]++
	s.mu.Unlock()
}

// run drives one open-loop run: request i is due at start + i/rate whether
// or not earlier requests have answered. If MaxOutstanding requests are
// already in flight, the due request is dropped and counted, never delayed,
// so the offered load stays what was asked and overload stays visible.
func run(ctx context.Context, o options) (*Report, error) {
	u, err := o.validate()
	if err != nil {
		return nil, err
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	idle := o.idleConn
	if idle <= 0 {
		idle = time.Second
	}
	// A plain net.Dialer: fasthttp's default dialer keeps a process-wide
	// DNS cache with its own goroutine, which buys nothing for one target.
	dialer := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	client := &fasthttp.HostClient{
		Addr:                      addr,
		Dial:                      func(a string) (net.Conn, error) { return dialer.Dial("tcp", a) },
		IsTLS:                     u.Scheme == "https",
		Name:                      "floodgate-loadgen",
		MaxConns:                  o.MaxOutstanding,
		MaxIdleConnDuration:       idle,
		MaxIdemponentCallAttempts: 1, // a retry would hide the failure we measure
		ReadTimeout:               o.Timeout,
		WriteTimeout:              o.Timeout,
	}
	defer client.CloseIdleConnections()

	base := u.Scheme + "://" + u.Host + u.EscapedPath()
	if base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	stats := make([]*classStats, len(o.Classes))
	for i := range stats {
		stats[i] = &classStats{}
	}
	pick := newPicker(o.Classes)
	var (
		outstanding atomic.Int64
		wg          sync.WaitGroup
		maxLag      time.Duration
	)
	start := time.Now()
	var deadline time.Time
	if o.Duration > 0 {
		deadline = start.Add(o.Duration)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	nsPerReq := float64(time.Second) / o.Rate
schedule:
	for i := int64(0); o.Count == 0 || i < o.Count; i++ {
		due := start.Add(time.Duration(float64(i) * nsPerReq))
		if !deadline.IsZero() && !due.Before(deadline) {
			break
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break schedule
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			break
		}
		if lag := time.Since(due); lag > maxLag {
			maxLag = lag
		}
		ci := pick.next()
		st := stats[ci]
		st.scheduled.Add(1)
		if outstanding.Load() >= int64(o.MaxOutstanding) {
			st.dropped.Add(1)
			continue
		}
		outstanding.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer outstanding.Add(-1)
			fire(client, base, &o.Classes[ci], st, due, o.Timeout)
		}()
	}
	scheduleEnd := time.Now()
	if o.afterSchedule != nil {
		o.afterSchedule()
	}
	wg.Wait()
	return buildReport(o, stats, scheduleEnd.Sub(start), time.Since(start), maxLag), nil
}

// fire sends one request. Latency runs from the time the request was due,
// not when it left, so a late generator or a queueing server shows up as
// latency instead of hiding (no coordinated omission).
func fire(client *fasthttp.HostClient, base string, c *Class, st *classStats, due time.Time, timeout time.Duration) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(base + c.Path)
	req.Header.SetMethod(c.Method)
	for k, v := range c.Headers {
		req.Header.Set(k, v)
	}
	st.sent.Add(1)
	err := client.DoTimeout(req, resp, timeout)
	lat := time.Since(due)
	if err != nil {
		st.errs.Add(1)
		st.countKind(&st.errorKinds, errorKind(err))
		return
	}
	code := resp.StatusCode()
	switch {
	case code == fasthttp.StatusServiceUnavailable && resp.Header.Peek(shedHeader) != nil:
		st.shed.Add(1)
		scope, _, _ := bytes.Cut(resp.Header.Peek(shedHeader), []byte{';'})
		st.countKind(&st.shedByScope, string(bytes.TrimSpace(scope)))
	case code >= 200 && code < 400:
		st.succeeded.Add(1)
		st.latency.record(lat)
	default:
		st.errs.Add(1)
		st.countKind(&st.errorKinds, fmt.Sprintf("http_%d", code))
	}
}

func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, fasthttp.ErrConnectionClosed):
		return "connection_closed"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no_free_conns"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return "dial"
	}
	return "other"
}

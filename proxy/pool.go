package proxy

import (
	"errors"
	"io"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// poolKey identifies a connection pool. Pools outlive config snapshots so a
// reload does not throw away warm connections; two routes share a pool when
// they talk to the same address with the same settings.
type poolKey struct {
	addr     string
	connect  time.Duration
	response time.Duration
	idle     time.Duration
	maxConns int
	// tls is the origin's TLS settings (comparable: the files' paths), so
	// a change of settings gets a new pool.
	tls tlsconf.ClientConfig
}

// clientPool holds one fasthttp.HostClient per (instance, settings). Reads
// are lock-free; creation takes a lock.
type clientPool struct {
	mu      sync.Mutex
	clients sync.Map // poolKey -> *fasthttp.HostClient
	// byInstance remembers each instance's client with the key it was
	// found under (forInstance): hashing a poolKey, strings and TLS
	// settings included, on every attempt showed in profiles. Copied on
	// write under mu; bounded by maxRememberedInstances.
	byInstance atomic.Pointer[map[*origins.Instance]instanceClient]
}

type instanceClient struct {
	key poolKey
	hc  *fasthttp.HostClient
}

// maxRememberedInstances bounds byInstance: instances come and go with
// discovery, and one that left without its address being closed would
// otherwise stay remembered.
const maxRememberedInstances = 4096

// forInstance is get(k) for an attempt to in, remembered per instance.
func (p *clientPool) forInstance(in *origins.Instance, k poolKey) *fasthttp.HostClient {
	if m := p.byInstance.Load(); m != nil {
		if e, ok := (*m)[in]; ok && e.key == k {
			return e.hc
		}
	}
	hc := p.get(k)
	p.mu.Lock()
	defer p.mu.Unlock()
	var next map[*origins.Instance]instanceClient
	if old := p.byInstance.Load(); old != nil && len(*old) < maxRememberedInstances {
		next = make(map[*origins.Instance]instanceClient, len(*old)+1)
		maps.Copy(next, *old)
	} else {
		next = make(map[*origins.Instance]instanceClient, 1)
	}
	next[in] = instanceClient{key: k, hc: hc}
	p.byInstance.Store(&next)
	return hc
}

// forgetInstances drops the remembered clients that match; callers hold mu.
func (p *clientPool) forgetInstances(match func(poolKey) bool) {
	old := p.byInstance.Load()
	if old == nil {
		return
	}
	next := make(map[*origins.Instance]instanceClient, len(*old))
	for in, e := range *old {
		if !match(e.key) {
			next[in] = e
		}
	}
	p.byInstance.Store(&next)
}

func newClientPool() *clientPool { return &clientPool{} }

func (p *clientPool) get(k poolKey) *fasthttp.HostClient {
	if hc, ok := p.clients.Load(k); ok {
		return hc.(*fasthttp.HostClient)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if hc, ok := p.clients.Load(k); ok {
		return hc.(*fasthttp.HostClient)
	}
	hc := &fasthttp.HostClient{
		Addr:                          k.addr,
		Dial:                          dialer(k.addr, k.connect, k.response, k.tls),
		MaxConns:                      k.maxConns,
		MaxIdleConnDuration:           k.idle,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		// Each stale pooled connection found costs one attempt (and is
		// closed); after an idle period every pooled connection may be
		// stale, so allow as many as the pool can hold, plus a fresh dial.
		// retryIfErr still allows only one retry for any other error.
		MaxIdemponentCallAttempts: k.maxConns + 1,
		RetryIfErr:                retryIfErr,
	}
	// Bodies stream or not per response, decided on its headers.
	newOriginTransport(hc, hc.AcquireConn, hc.ReleaseConn, hc.CloseConn)
	p.clients.Store(k, hc)
	return hc
}

// closeAddr closes and forgets every pool to addr. It is called once an
// instance that left discovery has finished its in-flight requests, so
// removing an instance drains it instead of cutting requests.
func (p *clientPool) closeAddr(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients.Range(func(k, v any) bool {
		if k.(poolKey).addr == addr {
			v.(*fasthttp.HostClient).CloseIdleConnections()
			p.clients.Delete(k)
		}
		return true
	})
	p.forgetInstances(func(k poolKey) bool { return k.addr == addr })
}

func (p *clientPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients.Range(func(k, v any) bool {
		v.(*fasthttp.HostClient).CloseIdleConnections()
		p.clients.Delete(k)
		return true
	})
	p.byInstance.Store(nil)
}

// retryIfErr decides fasthttp's in-client retries. A stale pooled connection
// is always safe to retry: nothing was sent. A connection closed before the
// first response byte is retried once for bodiless idempotent requests,
// the only ones that cannot have had an effect worth protecting.
// Requests with streamed bodies are never retried here (fasthttp can't
// replay them); the forwarder replays those itself on a stale connection.
func retryIfErr(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if errors.Is(err, errStaleConn) {
		return true, true
	}
	if attempts > 1 || len(req.Body()) > 0 {
		return false, false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) {
		return true, isIdempotentMethod(req.Header.Method())
	}
	return false, false
}

func isIdempotentMethod(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions, fasthttp.MethodTrace,
		fasthttp.MethodPut, fasthttp.MethodDelete:
		return true
	}
	return false
}

package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/origins"
	"github.com/floodgate-dev/floodgate/tlsconf"
)

// The WebSocket handshake through the forwarding endpoint. The inbound
// chain has run as for any request (scored, maybe shed or limited); the
// handshake then goes to an instance picked by the attempt loop, once:
// an upgrade is neither retried nor hedged (the origin may have acted on
// it). It travels on a connection dialled for it, never one from the
// keep-alive pool, because after a 101 that connection belongs to the
// tunnel, and after any other answer it is closed rather than pooled.

// errWrongUpgrade is a 101 that switched to a protocol nobody asked for.
var errWrongUpgrade = errors.New("origin switched protocols to something other than the websocket the client asked for")

// handshakeReaderSize bounds the origin's 101 header, like the pool's
// read buffer does for any response header.
const handshakeReaderSize = 16 << 10

var handshakeReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, handshakeReaderSize) }}

// upgradeAnswer is an origin's answer to a handshake and the connection it
// came on.
type upgradeAnswer struct {
	resp *fasthttp.Response
	raw  net.Conn      // the dialled connection (TLS over TCP when the origin has tls)
	conn *upstreamConn // raw with per-operation timeouts, for the handshake
	br   *bufio.Reader
}

// close drops the connection (for any answer but a 101 the tunnel takes).
func (a *upgradeAnswer) close() { _ = a.raw.Close() }

// upgradeExchange sends one handshake: the origins.Exchange the attempt
// loop drives.
type upgradeExchange struct {
	e   *forwardEndpoint
	c   *filters.Context
	req *fasthttp.Request
	key poolKey // the origin's pool settings (timeouts, TLS), without the address
	// origin is the request's origin (a group's active one); key is for
	// its instances.
	origin string
}

// Send dials in, writes the handshake and reads the answer's header (any
// body stays unread, to be relayed as a stream). The connection is dialled
// the way the instance's pool dials (connect timeout, origin TLS and its
// handshake, the response timeout on every read and write) but never
// enters the pool.
func (x *upgradeExchange) Send(in *origins.Instance) (*upgradeAnswer, error) {
	k := x.e.instanceKey(x.key, x.origin, in)
	conn, err := x.e.pool.get(k).Dial(k.addr)
	if err != nil {
		return nil, err
	}
	uc, ok := conn.(*upstreamConn)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("the pool dialled a connection of an unexpected type (a wiring bug)")
	}
	a := &upgradeAnswer{raw: uc.Conn, conn: uc}
	bw := bufio.NewWriterSize(a.conn, 4<<10)
	if err := x.req.Write(bw); err != nil {
		a.close()
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		a.close()
		return nil, err
	}
	br := handshakeReaders.Get().(*bufio.Reader)
	br.Reset(a.conn)
	a.br = br
	a.resp = fasthttp.AcquireResponse()
	a.resp.Header.DisableNormalizing()
	a.resp.StreamBody = true
	if err := a.resp.ReadLimitBody(br, 0); err != nil {
		fasthttp.ReleaseResponse(a.resp)
		a.close()
		return nil, err
	}
	return a, nil
}

// Fork is never called: a handshake is not replayable, so never hedged.
func (x *upgradeExchange) Fork() func(*origins.Instance) (*upgradeAnswer, error) {
	return func(*origins.Instance) (*upgradeAnswer, error) {
		return nil, errors.New("a WebSocket handshake is never hedged")
	}
}

func (x *upgradeExchange) Status(a *upgradeAnswer) int { return a.resp.StatusCode() }

func (x *upgradeExchange) Discard(a *upgradeAnswer) {
	_ = a.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(a.resp)
	a.close()
}

func (x *upgradeExchange) Failure(err error) origins.Outcome {
	_, cat := classifyOriginError(err)
	return outcomeOf(cat)
}

func (x *upgradeExchange) Attempted(a origins.Attempt) {
	x.e.record(x.c, a.Origin, filters.Attempt{Instance: a.Instance, Start: a.Start, Duration: a.Duration,
		Outcome: a.Outcome.String(), Status: a.Status, Retry: a.Retry, Hedge: a.Hedge})
}

func (x *upgradeExchange) Retried()          {}
func (x *upgradeExchange) Hedged()           {}
func (x *upgradeExchange) Note(event string) { x.c.Log(event) }

// applyUpgrade forwards a WebSocket handshake and, on 101, hands the
// client's connection to a tunnel. Any other answer is relayed as a normal
// response on a connection that is closed afterwards.
func (e *forwardEndpoint) applyUpgrade(c *filters.Context, o *origins.Origin, oc *origins.OriginConfig, fallback func(*origins.Origin) *origins.Origin) error {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	e.buildRequest(c, req)
	// buildRequest drops hop-by-hop headers; these two are the handshake.
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.ResetBody()
	x := &upgradeExchange{e: e, c: c, req: req, key: e.poolKeyFor(oc), origin: o.Name()}
	// Not replayable: never retried or hedged, so never sent across a
	// group; only a first attempt the active origin cannot place moves on
	// to the group's next member.
	ans, err := origins.Do(o, nil, origins.Request{Method: c.Method, Fallback: fallback}, x)
	if err != nil {
		var pe *origins.PickError
		if errors.As(err, &pe) {
			return pickError(o.Name(), pe.Err)
		}
		status, cat := classifyOriginError(err)
		var de *dialError
		if errors.As(err, &de) && de.handshake {
			return filters.Fail(status, cat, "TLS handshake with origin "+c.Origin+" failed: "+tlsconf.Describe(de.err), err)
		}
		return filters.Fail(status, cat, originErrorReason(cat, c.Origin), err)
	}
	a := ans.Response
	if a.resp.StatusCode() != http.StatusSwitchingProtocols {
		c.Log("origin declined the WebSocket handshake")
		e.writeResponse(c, a.resp, attemptEnd{ticket: ans.Done, after: a.close}, ans.Latency)
		return nil
	}
	if !responseIsWebSocket(&a.resp.Header) {
		e.refuseResponse(c, a.resp, attemptEnd{ticket: ans.Done}, ans.Latency, errWrongUpgrade)
		a.close()
		return nil
	}
	// The attempt is over: the instance's in-flight count and the breaker
	// see a successful exchange; the tunnel is a connection, not a request.
	ans.Done.Done(origins.Result{Latency: ans.Latency, Outcome: origins.OutcomeSuccess, Status: http.StatusSwitchingProtocols})

	out := &c.Request.Response
	out.SetStatusCode(http.StatusSwitchingProtocols)
	out.Header.DisableNormalizing()
	a.resp.Header.SetNoDefaultContentType(true)
	copyResponseHeaders(&out.Header, &a.resp.Header, c)
	out.Header.Set("Upgrade", "websocket")
	out.Header.Add("Via", e.viaHop)
	c.MarkResponded(http.StatusSwitchingProtocols, filters.CategorySuccess)

	tn := &tunnel{set: e.tunnels, route: e.route, limits: e.tunnelLimits, metrics: e.tunnelMetrics, logger: e.logger, origin: a.raw}
	if n := a.br.Buffered(); n > 0 {
		tn.pending, _ = a.br.Peek(n)
		tn.pending = append([]byte(nil), tn.pending...)
	}
	a.br.Reset(nil)
	handshakeReaders.Put(a.br)
	fasthttp.ReleaseResponse(a.resp)
	_ = a.raw.SetDeadline(time.Time{})
	if !e.tunnels.add(tn) {
		a.close()
		c.Respond(http.StatusServiceUnavailable, filters.CategoryShedGlobal, "the gateway is shutting down")
		return nil
	}

	// fasthttp would skip the hijack, with the 101 already sent, on a
	// connection it means to close (shutdown, Connection: close); the
	// tunnel writes the 101 itself so it always gets the connection.
	// The server keeps hijacked connections open (edge.NewServer), so the
	// handler only collects what the tunnel needs and returns: fasthttp
	// then frees the request context and its read buffer, and the tunnel
	// owns the connection.
	rc := c.Request
	rc.HijackSetNoResponse(true)
	rc.Hijack(func(conn net.Conn) {
		raw := conn
		if u, ok := conn.(interface{ UnsafeConn() net.Conn }); ok {
			raw = u.UnsafeConn()
		}
		h := &rc.Response.Header
		if h.StatusCode() != http.StatusSwitchingProtocols {
			// An outbound filter replaced the answer: send that instead.
			h.SetConnectionClose()
			bw := bufio.NewWriter(raw)
			if rc.Response.Write(bw) == nil {
				_ = bw.Flush()
			}
			_ = raw.Close()
			tn.abort("an outbound filter replaced the 101 with " + strconv.Itoa(h.StatusCode()))
			return
		}
		h.Set("Connection", "Upgrade")
		head := h.AppendBytes(nil)
		early, err := takeBuffered(conn, raw)
		if err != nil && !errors.Is(err, io.EOF) {
			_ = raw.Close()
			tn.abort("reading the client's first bytes: " + err.Error())
			return
		}
		go tn.run(raw, head, early, errors.Is(err, io.EOF))
	})
	return nil
}

// aLongTimeAgo is a read deadline that has passed: a read returns at once.
var aLongTimeAgo = time.Unix(1, 0)

// takeBuffered returns the bytes fasthttp read from the client past the
// handshake (a client may send its first message in the same segment),
// which only the hijacked connection's buffered reader holds. With the
// underlying connection's read deadline in the past, reads return what is
// buffered and then time out without touching the socket; the tunnel then
// reads raw directly and the reader can be freed. io.EOF means the client
// finished sending already.
func takeBuffered(hijacked, raw net.Conn) ([]byte, error) {
	if err := raw.SetReadDeadline(aLongTimeAgo); err != nil {
		return nil, err
	}
	var early []byte
	var buf [512]byte
	for {
		n, err := hijacked.Read(buf[:])
		early = append(early, buf[:n]...)
		switch {
		case err == nil:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			return early, raw.SetReadDeadline(time.Time{})
		default:
			return early, err
		}
	}
}

var _ origins.Exchange[*upgradeAnswer] = (*upgradeExchange)(nil)

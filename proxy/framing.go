package proxy

import (
	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/proxy/edge"
)

// framingAllowance is the chunk framing (sizes, extensions, trailers) a
// chunked body may carry beyond its data.
const framingAllowance = 64 << 10

// boundChunkedFraming caps how many bytes a chunked request body may take
// off the wire: twice server.max_body_size plus framingAllowance. fasthttp
// skips chunk extensions inside a single body read, so without a cap on
// the connection an endless extension would be read for as long as the
// client cares to send it (RFC 9112 7.1.1 asks servers to bound them); the
// forwarder tightens the cap to the data actually read as it streams (see
// requestBody). The returned func lifts the cap once the request is done;
// nil when there is nothing to lift.
func boundChunkedFraming(ctx *fasthttp.RequestCtx, maxBody int64) func() {
	conn := edge.ConnOf(ctx.Conn())
	if conn == nil || ctx.Request.Header.ContentLength() != -1 {
		return nil
	}
	conn.SetReadLimit(conn.BytesRead() + 2*maxBody + framingAllowance)
	return func() { conn.SetReadLimit(0) }
}

// wireLimiter tightens a connection's read cap as a chunked body streams:
// framing may exceed the data read so far by at most framingAllowance.
type wireLimiter struct {
	conn  *edge.Conn
	start int64
}

func newWireLimiter(ctx *fasthttp.RequestCtx) *wireLimiter {
	conn := edge.ConnOf(ctx.Conn())
	if conn == nil || ctx.Request.Header.ContentLength() != -1 {
		return nil
	}
	w := &wireLimiter{conn: conn, start: conn.BytesRead()}
	w.update(0)
	return w
}

// update allows framing up to the data read plus framingAllowance.
func (w *wireLimiter) update(dataRead int64) {
	if w == nil {
		return
	}
	w.conn.SetReadLimit(w.start + 2*dataRead + framingAllowance)
}

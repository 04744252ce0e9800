package proxy

import (
	"io"

	"github.com/valyala/fasthttp"
)

// sendToOrigin sends req on one of hc's connections through its origin
// transport and reads the answer into resp, retrying as HostClient.Do
// would (retryIfErr: a stale pooled connection, or one closed before the
// first response byte for a bodiless idempotent request), up to
// hc.MaxIdemponentCallAttempts; a streamed body is never resent here.
//
// It stands in for HostClient.Do, which the proxy does not need: Do parses
// the request URI (which the forwarder built already normalized, with Host
// set) on every call, reads the clock for a last-use stamp nothing reads,
// and checks a default User-Agent the pool turned off. hc must carry the
// origin transport (clientPool does that).
func sendToOrigin(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) error {
	rt := hc.Transport
	streamed := req.IsBodyStream()
	for attempts := 1; ; attempts++ {
		retry, err := rt.RoundTrip(hc, req, resp)
		if err == nil {
			return nil
		}
		if err == io.EOF {
			err = fasthttp.ErrConnectionClosed
		}
		if !retry || streamed || attempts >= hc.MaxIdemponentCallAttempts {
			return err
		}
		if _, again := retryIfErr(req, attempts, err); !again {
			return err
		}
		resp.Reset()
	}
}

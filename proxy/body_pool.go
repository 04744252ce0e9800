package proxy

import (
	"io"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Buffered origin bodies (a known length up to bufferedBodyLimit, read
// whole by the origin transport) live in buffers of this file's pools, one
// pool per power-of-two size class, instead of fasthttp's body pool.
//
// Why: fasthttp's pool (bytebufferpool) recalibrates to the sizes it sees
// most and drops any buffer larger than its 95th percentile on return, and
// sync.Pool empties at every GC. A gateway that answers mostly small bodies
// therefore allocated every larger one: right after a 64 B phase, 16 KiB
// answers allocated 11-18 KB each and the gateway collected garbage every
// 60 ms (docs/PERFORMANCE.md). A size class always returns to its own pool.
//
// Client request bodies read whole (the same size limit) use these pools
// too: the forwarder sends the buffer as the upstream request's raw body
// and releases it after the exchange.
//
// Ownership of a response body: the transport puts the buffer in the origin response as its
// body stream (pooledBody), so every path that releases or closes that
// response without using the body gives the buffer back. The forwarder
// takes it out of the origin response and lends it to the client's
// response (lendBody); fasthttp resets the request's user values after it
// has written the response and before it resets the response, which is
// when lentBody.Close reclaims the buffer, but only if the client's
// response still holds it: a filter that replaced or reset the body has
// handed it to fasthttp, and then it is left to the garbage collector.

const (
	minBodyClassShift = 6  // 64 B
	maxBodyClassShift = 16 // 64 KiB
	bodyClasses       = maxBodyClassShift - minBodyClassShift + 1
)

// The largest class must hold the largest buffered body.
var _ = [1]struct{}{}[bufferedBodyLimit-1<<maxBodyClassShift]

var bodyPools [bodyClasses]sync.Pool

// bodyClass is the index of the smallest class that holds n bytes.
func bodyClass(n int) int {
	if n <= 1<<minBodyClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBodyClassShift
}

// pooledBody states.
const (
	bodyHeld = iota // held by its taker; as an origin response's body stream, its Close gives it back
	bodyLent        // taken for the client's response: lentBody.Close gives it back
	bodyFree        // in its pool: any late Close is a no-op
)

// pooledBody is one buffered body. While it is an origin response's body
// stream it reads like one, so code that treats the response generically
// (reads its Body, discards it) works unchanged.
type pooledBody struct {
	buf   []byte // cap is the class size; len the body's
	off   int
	state uint8
	out   *fasthttp.Response // the client's response while lent
}

// acquirePooledBody returns a buffer of length n (at most
// bufferedBodyLimit), its content undefined.
func acquirePooledBody(n int) *pooledBody {
	c := bodyClass(n)
	pb, _ := bodyPools[c].Get().(*pooledBody)
	if pb == nil {
		pb = &pooledBody{buf: make([]byte, 0, 1<<(c+minBodyClassShift))}
	}
	pb.buf, pb.off, pb.state, pb.out = pb.buf[:n], 0, bodyHeld, nil
	return pb
}

func (pb *pooledBody) release() {
	pb.state, pb.out = bodyFree, nil
	pb.buf = pb.buf[:0]
	bodyPools[bodyClass(cap(pb.buf))].Put(pb)
}

// Read serves the body as a stream, for code that reads an origin response
// without knowing how its body arrived.
func (pb *pooledBody) Read(p []byte) (int, error) {
	if pb.off >= len(pb.buf) {
		return 0, io.EOF
	}
	n := copy(p, pb.buf[pb.off:])
	pb.off += n
	return n, nil
}

// Close is the origin response letting go of its body stream: the buffer
// goes back to its pool, unless the forwarder took it.
func (pb *pooledBody) Close() error {
	if pb.state == bodyHeld {
		pb.release()
	}
	return nil
}

// lentBodyKey is the request user value under which a lent body waits for
// fasthttp's reset.
type lentBodyKey struct{}

// lentBody is a pooledBody lent to a client's response; its Close (called
// by fasthttp when it resets the request's user values) reclaims it.
type lentBody pooledBody

// lendBody moves pb, the body stream of the origin response about to be
// released, into the client's response ctx.Response, and returns the
// body's length. The caller must release the origin response afterwards
// (its Close of pb is then a no-op).
func lendBody(ctx *fasthttp.RequestCtx, pb *pooledBody) int {
	out := &ctx.Response
	pb.state, pb.out = bodyLent, out
	// out's previous body slice is ours by SwapBody's contract; it is
	// dropped (fasthttp's pool gives out a buffer whose slice this very
	// reclaim emptied, so it is usually nil).
	_ = out.SwapBody(pb.buf)
	ctx.SetUserValue(lentBodyKey{}, (*lentBody)(pb))
	return len(pb.buf)
}

// Close reclaims the buffer from the client's response once it has been
// written. Only a buffer the response still holds is reclaimed (taken out
// of it first, so fasthttp's reset does not pool it too); otherwise a
// filter replaced or reset the body, the buffer may be in fasthttp's pool
// already, and it is left to the garbage collector.
func (l *lentBody) Close() error {
	pb := (*pooledBody)(l)
	out := pb.out
	if out == nil || pb.state != bodyLent || out.IsBodyStream() {
		return nil
	}
	held := out.SwapBody(nil)
	if cap(held) > 0 && unsafe.SliceData(held) == unsafe.SliceData(pb.buf[:cap(pb.buf)]) {
		pb.release()
		return nil
	}
	_ = out.SwapBody(held)
	pb.out = nil
	return nil
}

// isPooledBody reports whether resp's body was read whole into a pooled
// buffer (as opposed to streaming from the origin).
func isPooledBody(resp *fasthttp.Response) bool {
	_, ok := resp.BodyStream().(*pooledBody)
	return ok
}

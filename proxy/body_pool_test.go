package proxy

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/proxy/edge"
)

func TestBodyClassHoldsTheBody(t *testing.T) {
	for _, n := range []int{1, 511, 512, 513, 4096, 4097, 16 << 10, 64<<10 - 1, bufferedBodyLimit} {
		c := bodyClass(n)
		if size := 1 << (c + minBodyClassShift); size < n || (c > 0 && size/2 >= n) || c >= bodyClasses {
			t.Errorf("%d bytes: class %d (%d bytes)", n, c, size)
		}
	}
}

// lendFromOrigin puts content in a pooled body carried by an origin
// response, lends it to ctx's response as the forwarder does, and
// releases the origin response.
func lendFromOrigin(ctx *fasthttp.RequestCtx, content []byte) *pooledBody {
	pb := acquirePooledBody(len(content))
	copy(pb.buf, content)
	resp := fasthttp.AcquireResponse()
	resp.SetBodyStream(pb, len(content))
	lendBody(ctx, pb)
	fasthttp.ReleaseResponse(resp) // its Close of the stream must not free the lent buffer
	return pb
}

func aliases(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && unsafe.SliceData(a[:cap(a)]) == unsafe.SliceData(b[:cap(b)])
}

// A lent buffer is reclaimed when fasthttp resets the request's user
// values only if the client's response still holds it, and then the
// response no longer does; whatever a filter did to the body, a reclaimed
// buffer is never also left in the response.
func TestLentBodyIsReclaimedOnlyWhileTheResponseHoldsIt(t *testing.T) {
	content := bytes.Repeat([]byte("abcdefgh"), 300) // 2,400 bytes: the 4 KiB class
	for name, tc := range map[string]struct {
		filter      func(*fasthttp.Response)
		mustReclaim bool
		mustKeep    bool
	}{
		"untouched":            {filter: func(*fasthttp.Response) {}, mustReclaim: true},
		"replaced, smaller":    {filter: func(r *fasthttp.Response) { r.SetBodyString("short") }, mustReclaim: true},
		"replaced, larger":     {filter: func(r *fasthttp.Response) { r.SetBody(make([]byte, 8<<10)) }, mustKeep: true},
		"appended beyond it":   {filter: func(r *fasthttp.Response) { r.AppendBody(make([]byte, 4<<10)) }, mustKeep: true},
		"raw body set":         {filter: func(r *fasthttp.Response) { r.SetBodyRaw([]byte("raw")) }},
		"reset":                {filter: func(r *fasthttp.Response) { r.ResetBody() }},
		"stream set by filter": {filter: func(r *fasthttp.Response) { r.SetBodyStream(bytes.NewReader([]byte("s")), 1) }, mustKeep: true},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := new(fasthttp.RequestCtx)
			pb := lendFromOrigin(ctx, content)
			if pb.state != bodyLent || !bytes.Equal(ctx.Response.Body(), content) {
				t.Fatalf("after lending: state %d, body %d bytes", pb.state, len(ctx.Response.Body()))
			}
			tc.filter(&ctx.Response)
			ctx.Request.ResetUserValues() // what fasthttp does once the response is written
			freed := pb.state == bodyFree
			if freed && ctx.Response.IsBodyStream() {
				t.Fatal("freed a buffer while the response streams")
			}
			if freed && aliases(ctx.Response.Body(), pb.buf) {
				t.Fatal("a reclaimed buffer is still the response's body")
			}
			if tc.mustReclaim && !freed {
				t.Fatal("the response still held the buffer, but it was not reclaimed")
			}
			if tc.mustKeep && freed {
				t.Fatal("reclaimed a buffer the response no longer held")
			}
			ctx.Response.Reset()
		})
	}
}

// The origin response's own Close gives the buffer back, once, unless it
// was lent.
func TestPooledBodyCloseFreesOnlyWhatTheResponseOwns(t *testing.T) {
	pb := acquirePooledBody(100)
	resp := fasthttp.AcquireResponse()
	resp.SetBodyStream(pb, 100)
	if !isPooledBody(resp) {
		t.Fatal("a pooled body is not recognised")
	}
	fasthttp.ReleaseResponse(resp)
	if pb.state != bodyFree {
		t.Fatalf("releasing the origin response left the buffer in state %d", pb.state)
	}
	_ = pb.Close() // a late Close: no second return to the pool
	_ = (*lentBody)(pb).Close()
	if pb.state != bodyFree {
		t.Fatalf("late Close changed the state to %d", pb.state)
	}
}

// Through a real fasthttp server (the gateway's own options), buffers lent
// to responses and reclaimed after each write keep every answer intact
// while many keep-alive connections reuse them concurrently. Under -race a
// buffer reused before fasthttp finished writing it is also a reported
// race.
func TestLentBodiesStayIntactUnderConcurrentReuse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := edge.NewServer(func(ctx *fasthttp.RequestCtx) {
		// The path says what to answer: a byte and a length.
		var fill byte
		var n int
		if _, err := fmt.Sscanf(string(ctx.Path()), "/%c/%d", &fill, &n); err != nil {
			ctx.Error(err.Error(), 400)
			return
		}
		lendFromOrigin(ctx, bytes.Repeat([]byte{fill}, n))
	}, edge.Limits{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown(); <-done }()

	sizes := []int{1, 700, 3000, 5000, 16 << 10, 40 << 10, bufferedBodyLimit}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			hc := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1, Dial: func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }}
			defer hc.CloseIdleConnections()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for i := 0; i < 150; i++ {
				fill := byte('a' + (w*7+i)%26)
				n := sizes[(w+i)%len(sizes)]
				req.SetRequestURI(fmt.Sprintf("http://%s/%c/%d", ln.Addr(), fill, n))
				if err := hc.Do(req, resp); err != nil {
					errs <- err
					return
				}
				if body := resp.Body(); len(body) != n || bytes.IndexFunc(body, func(r rune) bool { return r != rune(fill) }) >= 0 {
					errs <- fmt.Errorf("worker %d request %d: %d bytes, want %d of %q", w, i, len(body), n, fill)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Command origin is the benchmark origin: a fasthttp server answering every
// request with a fixed body, so proxy overhead is what a benchmark measures.
// A numeric first path segment picks the body size (/64 answers 64 bytes,
// /16384 answers 16 KiB), so one origin serves every load of a run.
package main

import (
	"bytes"
	"flag"
	"log"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
)

// maxSize bounds the sizes a path may ask for, so a stray request cannot
// make the origin allocate without limit.
const maxSize = 1 << 20

func main() {
	addr := flag.String("addr", "127.0.0.1:9200", "listen address (loopback)")
	size := flag.Int("size", 1024, "body size for paths without a numeric first segment")
	flag.Parse()
	var bodies sync.Map // int -> []byte
	bodyOf := func(n int) []byte {
		if b, ok := bodies.Load(n); ok {
			return b.([]byte)
		}
		b, _ := bodies.LoadOrStore(n, bytes.Repeat([]byte("x"), n))
		return b.([]byte)
	}
	h := func(ctx *fasthttp.RequestCtx) {
		n := *size
		p := ctx.Path()
		if i := bytes.IndexByte(p[1:], '/'); i >= 0 {
			p = p[:i+1]
		}
		if v, err := strconv.Atoi(string(p[1:])); err == nil && v >= 0 && v <= maxSize {
			n = v
		}
		ctx.SetContentType("text/plain")
		ctx.SetBody(bodyOf(n))
	}
	log.Fatal(fasthttp.ListenAndServe(*addr, h))
}

// Command origin is the benchmark origin: a fasthttp server answering every
// request with a fixed body, so proxy overhead is what a benchmark measures.
package main

import (
	"bytes"
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9200", "listen address (loopback)")
	size := flag.Int("size", 1024, "response body size in bytes")
	flag.Parse()
	body := bytes.Repeat([]byte("x"), *size)
	h := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBody(body)
	}
	log.Fatal(fasthttp.ListenAndServe(*addr, h))
}

// Command minproxy is the benchmark's floor for a fasthttp reverse proxy: a
// fasthttp.Server whose handler hands the request to one HostClient and
// returns its answer. No routing, filters, header rewriting or streaming:
// whatever Floodgate costs beyond this is the price of its features.
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9300", "listen address (loopback)")
	upstream := flag.String("upstream", "127.0.0.1:9200", "origin address")
	reduce := flag.Bool("reduce-memory", false, "set fasthttp's Server.ReduceMemoryUsage (idle-connection floor)")
	flag.Parse()
	hc := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			}
		},
		ReduceMemoryUsage: *reduce,
	}
	log.Fatal(srv.ListenAndServe(*addr))
}

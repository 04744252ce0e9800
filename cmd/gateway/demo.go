package main

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// startDemoOrigin serves the small origin behind the embedded default
// config's /demo route, so `go run ./cmd/gateway` shows a proxied request
// with nothing else installed. It is started only with the embedded
// config; real deployments configure real origins.
func startDemoOrigin(addr string) (*fasthttp.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &fasthttp.Server{Handler: demoHandler, Name: "floodgate-demo-origin"}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln, nil
}

func demoHandler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/events":
		// A short server-sent event stream, to see streaming through the
		// gateway: curl -N localhost:8080/demo/events
		ctx.SetContentType("text/event-stream")
		ctx.Response.Header.Set("Cache-Control", "no-cache")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			for i := 1; i <= 5; i++ {
				fmt.Fprintf(w, "id: %d\ndata: tick %d\n\n", i, i)
				if err := w.Flush(); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	default:
		ctx.SetContentType("application/json")
		fmt.Fprintf(ctx, `{"origin":"demo","method":%s,"path":%s,"query":%s,"forwardedFor":%s}`+"\n",
			strconv.Quote(string(ctx.Method())), strconv.Quote(string(ctx.Path())),
			strconv.Quote(string(ctx.QueryArgs().QueryString())),
			strconv.Quote(string(ctx.Request.Header.Peek("X-Forwarded-For"))))
	}
}

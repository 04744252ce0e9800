package main

import (
	"context"
	"log"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/timeseries"
)

// newServer adapts the transport-neutral timeseries.Service to fasthttp.
func newServer(svc *timeseries.Service, prefix string, logger *log.Logger) *fasthttp.Server {
	h := func(rc *fasthttp.RequestCtx) {
		path := string(rc.Path())
		if path == "/healthz" {
			rc.SetStatusCode(fasthttp.StatusOK)
			rc.SetBodyString("ok\n")
			return
		}
		op, ok := timeseries.OperationFromPath(prefix, path)
		rc.SetContentType("application/json")
		if !ok {
			rc.SetStatusCode(fasthttp.StatusNotFound)
			rc.SetBodyString(`{"error":"no such operation; POST ` + prefix + `{WriteEventRecordsSync|WriteEventRecords|ReadEventRecords|SearchEventRecords|AggregateEventRecords}","reason":"not_found"}`)
			return
		}
		if !rc.IsPost() {
			rc.Response.Header.Set("Allow", "POST")
			rc.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			rc.SetBodyString(`{"error":"use POST","reason":"method_not_allowed"}`)
			return
		}
		// The service copies what it keeps, so handing it fasthttp's body buffer is safe.
		r := svc.Serve(context.Background(), op, rc.PostBody())
		if r.RetryAfter > 0 {
			rc.Response.Header.Set("Retry-After", strconv.Itoa(int((r.RetryAfter+time.Second-1)/time.Second)))
		}
		rc.SetStatusCode(r.Status)
		rc.SetBody(r.Body)
	}
	return &fasthttp.Server{
		Handler:            h,
		Name:               "floodgate-timeseries",
		MaxRequestBodySize: 16 << 20,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        time.Minute,
		Logger:             logger,
	}
}

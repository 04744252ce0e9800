package main

import (
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/httpapi"
)

// newServer serves the store through the shared HTTP edge (timeseries/httpapi), plus
// GET /healthz and GET /metrics (the store's queue metrics and the Go runtime's).
func newServer(svc *timeseries.Service, prefix string, logger *log.Logger) *fasthttp.Server {
	api := httpapi.New(svc, httpapi.Options{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(svc.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h := func(rc *fasthttp.RequestCtx) {
		path := string(rc.Path())
		switch path {
		case "/healthz":
			rc.SetStatusCode(fasthttp.StatusOK)
			rc.SetBodyString("ok\n")
			return
		case "/metrics":
			metrics(rc)
			return
		}
		op, ok := timeseries.OperationFromPath(prefix, path)
		if !ok {
			rc.SetContentType("application/json")
			rc.SetStatusCode(fasthttp.StatusNotFound)
			rc.SetBodyString(`{"error":"no such operation; POST ` + prefix + `{WriteEventRecordsSync|WriteEventRecords|ReadEventRecords|SearchEventRecords|AggregateEventRecords}","reason":"not_found"}`)
			return
		}
		api.Serve(rc, op, nil)
	}
	return &fasthttp.Server{
		Handler: h,
		Name:    "floodgate-timeseries",
		// Bodies are streamed so the edge checks their length before buffering them and
		// bounds what all requests buffer together; fasthttp's own limit sits above the
		// edge's so the client gets the edge's JSON 413.
		StreamRequestBody:  true,
		MaxRequestBodySize: 2 * int(httpapi.DefaultMaxBodyBytes),
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        time.Minute,
		Logger:             logger,
	}
}

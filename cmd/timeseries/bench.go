package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/tsbench"
)

// runBench is `timeseries bench`: the store's acceptance figures as one table (see
// timeseries/README.md, Benchmarks). It is bounded by -events and -phase.
func runBench(args []string, stdout, stderr io.Writer) error {
	var o tsbench.Options
	fs := flag.NewFlagSet("timeseries bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Dir, "data", "", "data directory (default: a temporary one, removed afterwards)")
	fs.IntVar(&o.IngestEvents, "events", 1_000_000, "events ingested fire-and-forget (also the aggregation data set)")
	fs.IntVar(&o.Producers, "producers", 4, "concurrent async producers")
	fs.IntVar(&o.Batch, "batch", 500, "events per async request")
	fs.DurationVar(&o.PhaseTime, "phase", 5*time.Second, "duration of each latency phase")
	fs.StringVar(&o.ProfileDir, "cpuprofile-dir", "", "write one CPU profile per phase into this directory")
	httpToo := fs.Bool("http", true, "also ingest the same volume over HTTP through this server")
	phases := fs.String("phases", "", "comma-separated phases to run (default all: "+strings.Join(tsbench.PhaseNames(), ",")+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *phases != "" {
		o.Phases = strings.Split(*phases, ",")
	}
	if *httpToo {
		o.ServeHTTP = serveForBench
	}
	_, err := tsbench.Run(o, stdout)
	return err
}

// serveForBench serves svc through this command's server on a loopback port and posts with
// a fasthttp client, so the HTTP figure includes the edge the server really runs.
func serveForBench(svc *timeseries.Service) (func(op string, body []byte) (int, error), func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := newServer(svc, "/ts/", log.New(io.Discard, "", 0))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	client := &fasthttp.Client{MaxConnsPerHost: 64, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	base := "http://" + ln.Addr().String() + "/ts/"
	post := func(op string, body []byte) (int, error) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(base + op)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
		if err := client.Do(req, resp); err != nil {
			return 0, err
		}
		return resp.StatusCode(), nil
	}
	stop := func() {
		client.CloseIdleConnections()
		_ = srv.Shutdown()
		<-done
	}
	return post, stop, nil
}

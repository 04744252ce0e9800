// Package tsbench measures the TimeSeries store's acceptance figures (ingest throughput,
// sync-write, point-read and search latency, distinct aggregation over a day of events) and
// prints them as one table. It is run on demand by `timeseries bench` (cmd/timeseries), never
// by the default test run: every phase is bounded by an event count or a duration.
package tsbench

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
)

// Options bound a run. Zero values pick the defaults in parentheses.
type Options struct {
	Dir          string        // data directory (a fresh temp dir, removed afterwards)
	IngestEvents int           // events for the async ingest and aggregation data set (1,000,000)
	Producers    int           // concurrent async producers (4)
	Batch        int           // events per async request (500)
	PhaseTime    time.Duration // duration of each latency phase (5s)
	ProfileDir   string        // if set, a CPU profile per phase is written here
	// Phases, if set, runs only these phases (names as in PhaseNames), in the usual order.
	// The latency phases then run on whatever data the chosen phases left.
	Phases []string
	// ServeHTTP, if set, serves svc over HTTP on loopback and returns a function that posts
	// one request body to an operation; the ingest phase then also runs through it.
	ServeHTTP func(svc *timeseries.Service) (post func(op string, body []byte) (int, error), stop func(), err error)
}

func (o *Options) defaults() {
	if o.IngestEvents <= 0 {
		o.IngestEvents = 1_000_000
	}
	if o.Producers <= 0 {
		o.Producers = 4
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.PhaseTime <= 0 {
		o.PhaseTime = 5 * time.Second
	}
}

// PhaseNames lists the phases in the order they run.
func PhaseNames() []string {
	return []string{"ingest", "ingesthttp", "aggregate", "diskfloor", "syncwrite", "read", "search"}
}

// Row is one line of the result table.
type Row struct {
	Name, Figure, Target string
}

// Run opens a store, runs every phase and writes the table to w.
func Run(o Options, w io.Writer) ([]Row, error) {
	o.defaults()
	started := time.Now()
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "tsbench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	cfg := timeseries.DemoConfig()
	ns := cfg.Namespaces["demo"]
	ns.QueueBuffering.BufferCapacity = 200_000
	ns.QueueBuffering.BufferBytes = 256 << 20
	ns.Limits.MaxBatchEvents = max(ns.Limits.MaxBatchEvents, o.Batch)
	ns.SLOs.Read.Max = time.Second
	cfg.Namespaces["demo"] = ns
	cfg.Namespaces["reads"] = ns
	svc, err := timeseries.Open(filepath.Join(dir, "store"), cfg, timeseries.WithoutRetentionLoop())
	if err != nil {
		return nil, err
	}
	defer svc.Close(context.Background())
	b := &bench{o: o, svc: svc, dir: dir, now: time.Now().Truncate(time.Hour)}
	if o.ServeHTTP != nil {
		post, stop, err := o.ServeHTTP(svc)
		if err != nil {
			return nil, err
		}
		defer stop()
		b.httpPost = post
	}
	fmt.Fprintf(w, "timeseries bench: GOMAXPROCS=%d, %d ingest events, %d producers x %d events/request, %s per latency phase\n",
		runtime.GOMAXPROCS(0), o.IngestEvents, o.Producers, o.Batch, o.PhaseTime)
	phases := []struct {
		name string
		run  func() ([]Row, error)
	}{
		{"ingest", b.ingest},
		{"ingesthttp", b.ingestHTTP},
		{"aggregate", b.aggregate},
		{"diskfloor", b.diskFloor},
		{"syncwrite", b.syncWrites},
		{"read", b.reads},
		{"search", b.search},
	}
	for _, name := range o.Phases {
		if !slices.Contains(PhaseNames(), name) {
			return nil, fmt.Errorf("unknown phase %q (phases: %v)", name, PhaseNames())
		}
	}
	var rows []Row
	for _, p := range phases {
		if len(o.Phases) > 0 && !slices.Contains(o.Phases, p.name) {
			continue
		}
		stop := b.profile(p.name)
		r, err := p.run()
		stop()
		if err != nil {
			return rows, fmt.Errorf("%s: %w", p.name, err)
		}
		rows = append(rows, r...)
	}
	if b.ingested > 0 {
		rows = append(rows, Row{"disk bytes per event (after ingest)", fmt.Sprintf("%.0f B", b.diskPerEvent(dir)), "-"})
	}
	fmt.Fprintf(w, "\n| measurement | figure | target |\n|---|---|---|\n")
	defer func() {
		fmt.Fprintf(w, "\nprocess CPU %s over %s wall: the machine gave this run %.0f%% of one core on average\n",
			cpuTime().Round(time.Second), time.Since(started).Round(time.Second), 100*cpuTime().Seconds()/time.Since(started).Seconds())
	}()
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s |\n", r.Name, r.Figure, r.Target)
	}
	return rows, nil
}

type bench struct {
	o        Options
	svc      *timeseries.Service
	dir      string // the store's parent directory
	now      time.Time
	httpPost func(op string, body []byte) (int, error)
	lastCPU  time.Duration // CPU time of the last timed phase
	ingested int           // events written by the ingest phases
	seeded   int           // events written to seed the read phase
}

// cpuPerOp renders the last timed phase's process CPU time per operation.
func (b *bench) cpuPerOp(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %.2f ms CPU/op", float64((b.lastCPU/time.Duration(n)).Microseconds())/1000)
}

func (b *bench) profile(name string) func() {
	if b.o.ProfileDir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(b.o.ProfileDir, name+".cpu.pprof"))
	if err != nil {
		return func() {}
	}
	if pprof.StartCPUProfile(f) != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

var (
	keyDevice  = base64.StdEncoding.EncodeToString([]byte("deviceType"))
	keyStatus  = base64.StdEncoding.EncodeToString([]byte("status"))
	keyPayload = base64.StdEncoding.EncodeToString([]byte("payload"))
	devices    = []string{"ios", "android", "web", "tv", "car", "watch"}
	statuses   = []string{"200", "201", "404", "500", "503"}
	payload    = base64.StdEncoding.EncodeToString([]byte("some opaque payload bytes of a typical event"))
)

// appendEvent appends event i of the data set as JSON: 1000 series, spread over the day
// before b.now, three items (two of them indexed).
func (b *bench) appendEvent(dst []byte, tsid string, i int, at time.Time) []byte {
	dst = append(dst, `{"timeSeriesId":"`...)
	dst = append(dst, tsid...)
	dst = append(dst, `","eventTime":"`...)
	dst = at.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","eventId":"e`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `","eventItems":[{"eventItemKey":"`+keyDevice+`","eventItemValue":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, []byte(devices[(i*7)%len(devices)]))
	dst = append(dst, `"},{"eventItemKey":"`+keyStatus+`","eventItemValue":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, []byte(statuses[(i*13)%len(statuses)]))
	dst = append(dst, `"},{"eventItemKey":"`+keyPayload+`","eventItemValue":"`+payload+`"}]}`...)
	return dst
}

func (b *bench) batchBody(ns string, from, n int, at func(i int) time.Time, tsid func(i int) string) []byte {
	body := make([]byte, 0, n*260)
	body = append(body, `{"namespace":"`+ns+`","events":[`...)
	for i := from; i < from+n; i++ {
		if i > from {
			body = append(body, ',')
		}
		body = b.appendEvent(body, tsid(i), i, at(i))
	}
	return append(body, "]}"...)
}

// ingest sends IngestEvents fire-and-forget events over the day before now from Producers
// goroutines (bodies prepared beforehand, so the figure is the store's cost), and times
// until the last one is written.
func (b *bench) ingest() ([]Row, error) {
	n := b.o.IngestEvents
	at, tsid := b.ingestShape()
	var bodies [][]byte
	for from := 0; from < n; from += b.o.Batch {
		bodies = append(bodies, b.batchBody("demo", from, min(b.o.Batch, n-from), at, tsid))
	}
	cpu0 := cpuTime()
	rate, retries, err := b.pushAsync(bodies, n, func(body []byte) (int, error) {
		return b.svc.Serve(context.Background(), timeseries.OpWrite, body).Status, nil
	})
	if err != nil {
		return nil, err
	}
	cpuPer := (cpuTime() - cpu0) / time.Duration(n)
	b.ingested += n
	return []Row{{fmt.Sprintf("async ingest, in-process Serve (JSON decode included), %d producers", b.o.Producers),
		fmt.Sprintf("%.0f events/s wall; %.1f µs CPU/event = %.0f events/s per 2 dedicated cores (%d queue_full retries)",
			rate, float64(cpuPer.Nanoseconds())/1000, 2/cpuPer.Seconds(), retries), ">= 200k events/s"}}, nil
}

// ingestHTTP sends the same volume again over HTTP, into namespace "reads" and the day
// before the in-process one (ids differ by offset).
func (b *bench) ingestHTTP() ([]Row, error) {
	if b.httpPost == nil {
		return nil, nil
	}
	n := b.o.IngestEvents
	at, tsid := b.ingestShape()
	http := make([][]byte, 0, n/b.o.Batch+1)
	atHTTP := func(i int) time.Time { return at(i - n) }
	for from := n; from < 2*n; from += b.o.Batch {
		http = append(http, b.batchBody("reads", from, min(b.o.Batch, 2*n-from), atHTTP, tsid))
	}
	cpu0 := cpuTime()
	rate, retries, err := b.pushAsync(http, n, func(body []byte) (int, error) { return b.httpPost(timeseries.OpWrite, body) })
	if err != nil {
		return nil, err
	}
	cpuPer := (cpuTime() - cpu0) / time.Duration(n)
	b.ingested += n
	return []Row{{fmt.Sprintf("async ingest over HTTP (loopback, %d client connections; client CPU included)", b.o.Producers),
		fmt.Sprintf("%.0f events/s wall; %.1f µs CPU/event = %.0f events/s per 2 dedicated cores (%d queue_full retries)",
			rate, float64(cpuPer.Nanoseconds())/1000, 2/cpuPer.Seconds(), retries), ">= 200k events/s"}}, nil
}

// ingestShape is the data set's event time and series of event i: 1000 series over the day
// before now.
func (b *bench) ingestShape() (at func(int) time.Time, tsid func(int) string) {
	n := b.o.IngestEvents
	day := int64(24 * time.Hour / time.Millisecond)
	at = func(i int) time.Time { return b.now.Add(-time.Duration(int64(i)*day/int64(n)+1) * time.Millisecond) }
	tsid = func(i int) string { return "dev" + strconv.Itoa(i%1000) }
	return at, tsid
}

func (b *bench) pushAsync(bodies [][]byte, events int, send func([]byte) (int, error)) (float64, int64, error) {
	var next atomic.Int64
	var retries atomic.Int64
	errs := make(chan error, b.o.Producers)
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < b.o.Producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
				for {
					st, err := send(bodies[i])
					if err != nil {
						errs <- err
						return
					}
					if st == 202 {
						break
					}
					if st != 503 {
						errs <- fmt.Errorf("async write answered %d", st)
						return
					}
					retries.Add(1)
					time.Sleep(time.Millisecond) // honour Retry-After, briefly
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	for b.held() > 0 {
		time.Sleep(time.Millisecond)
	}
	return float64(events) / time.Since(start).Seconds(), retries.Load(), nil
}

func (b *bench) held() int {
	n := 0
	for _, q := range b.svc.QueueStats() {
		n += q.Held
	}
	return n
}

// aggregate counts distinct deviceType over the whole ingested day (status >= 400).
func (b *bench) aggregate() ([]Row, error) {
	body := []byte(`{"namespace":"demo","timeInterval":{"start":"` + ts(b.now.Add(-24*time.Hour)) + `","end":"` + ts(b.now) + `"},` +
		`"searchQuery":{"range":{"eventItemKey":"` + keyStatus + `","gte":400}},` +
		`"aggregationQuery":{"distinct":{"eventItemKey":"` + keyDevice + `"}}}`)
	var lat []time.Duration
	var last []byte
	cpu0 := cpuTime()
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		r := b.svc.Serve(context.Background(), timeseries.OpAggregate, body)
		lat = append(lat, time.Since(t0))
		if r.Status != 200 {
			return nil, fmt.Errorf("aggregate answered %d: %s", r.Status, r.Body)
		}
		last = r.Body
	}
	complete := "complete"
	if bytes.Contains(last, []byte(`"partial":true`)) {
		complete = "PARTIAL"
	}
	cpuPer := (cpuTime() - cpu0) / 5
	slices.Sort(lat)
	return []Row{{fmt.Sprintf("distinct deviceType over a day of %d events (status >= 400), 5 calls", b.o.IngestEvents),
		fmt.Sprintf("median %s, max %s, %s; %s CPU per call (process-wide, background compaction included)", lat[2].Round(time.Millisecond), lat[4].Round(time.Millisecond), complete, cpuPer.Round(time.Millisecond)),
		"complete within read SLO (500ms)"}}, nil
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// syncWrites: batches of 10 fsynced writes, one writer then eight.
func (b *bench) syncWrites() ([]Row, error) {
	var rows []Row
	for _, writers := range []int{1, 8} {
		var seq atomic.Int64
		lat, err := b.timed(writers, func(int) (time.Duration, error) {
			i := int(seq.Add(1))
			body := b.batchBody("demo", 10_000_000+i*10, 10,
				func(j int) time.Time { return b.now.Add(-time.Duration(j%3_600_000) * time.Millisecond) },
				func(j int) string { return "sync" + strconv.Itoa(j%100) })
			t0 := time.Now()
			r := b.svc.Serve(context.Background(), timeseries.OpWriteSync, body)
			if r.Status != 200 {
				return 0, fmt.Errorf("sync write answered %d: %s", r.Status, r.Body)
			}
			return time.Since(t0), nil
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, Row{fmt.Sprintf("sync write, batch of 10, %d writer(s)", writers),
			fmt.Sprintf("%s (%.0f events/s%s)", percentiles(lat), float64(len(lat)*10)/b.o.PhaseTime.Seconds(), b.cpuPerOp(len(lat))), map[int]string{1: "-", 8: "p99 <= 5 ms"}[writers]})
	}
	return rows, nil
}

// timed runs fn from workers goroutines for PhaseTime and returns every latency.
func (b *bench) timed(workers int, fn func(worker int) (time.Duration, error)) ([]time.Duration, error) {
	cpu0 := cpuTime()
	defer func() { b.lastCPU = cpuTime() - cpu0 }()
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	deadline := time.Now().Add(b.o.PhaseTime)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				d, err := fn(w)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, d)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return all, firstErr
}

func percentiles(lat []time.Duration) string {
	if len(lat) == 0 {
		return "no samples"
	}
	slices.Sort(lat)
	q := func(p float64) string {
		return strconv.FormatFloat(float64(lat[int(p*float64(len(lat)-1))].Microseconds())/1000, 'f', 2, 64)
	}
	return fmt.Sprintf("p50 %s ms, p99 %s ms, n=%d", q(0.5), q(0.99), len(lat))
}

// reads: one series of 10k events over the day in namespace "reads"; random one-hour
// windows, first page of 100; one reader, then four.
func (b *bench) reads() ([]Row, error) {
	day := int64(24 * time.Hour / time.Millisecond)
	for from := 0; from < 10_000; from += 1000 {
		body := b.batchBody("reads", 20_000_000+from, 1000,
			func(i int) time.Time {
				return b.now.Add(-time.Duration(int64(i-20_000_000)*day/10_000+1) * time.Millisecond)
			},
			func(int) string { return "hot" })
		if r := b.svc.Serve(context.Background(), timeseries.OpWriteSync, body); r.Status != 200 {
			return nil, fmt.Errorf("seeding reads answered %d: %s", r.Status, r.Body)
		}
		b.seeded += 1000
	}
	var rows []Row
	for _, readers := range []int{1, 4} {
		rngs := make([]*rand.Rand, readers)
		for i := range rngs {
			rngs[i] = rand.New(rand.NewPCG(uint64(i), 7))
		}
		lat, err := b.timed(readers, func(w int) (time.Duration, error) {
			end := b.now.Add(-time.Duration(rngs[w].Int64N(int64(23 * time.Hour))))
			body := []byte(`{"namespace":"reads","timeSeriesId":"hot","pageSize":100,"timeInterval":{"start":"` + ts(end.Add(-time.Hour)) + `","end":"` + ts(end) + `"}}`)
			t0 := time.Now()
			r := b.svc.Serve(context.Background(), timeseries.OpRead, body)
			if r.Status != 200 {
				return 0, fmt.Errorf("read answered %d: %s", r.Status, r.Body)
			}
			return time.Since(t0), nil
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, Row{fmt.Sprintf("point read (1h window, page of 100 of ~417), %d reader(s)", readers), percentiles(lat) + b.cpuPerOp(len(lat)), "p99 <= 5 ms with 4 readers"})
	}
	return rows, nil
}

// search: AND of keyword equality and integer range over the ingested day, page of 100.
func (b *bench) search() ([]Row, error) {
	body := []byte(`{"namespace":"demo","pageSize":100,"timeInterval":{"start":"` + ts(b.now.Add(-24*time.Hour)) + `","end":"` + ts(b.now) + `"},` +
		`"searchQuery":{"and":[{"equals":{"eventItemKey":"` + keyDevice + `","eventItemValue":"aW9z"}},{"range":{"eventItemKey":"` + keyStatus + `","gte":400}}]}}`)
	lat, err := b.timed(1, func(int) (time.Duration, error) {
		t0 := time.Now()
		r := b.svc.Serve(context.Background(), timeseries.OpSearch, body)
		if r.Status != 200 {
			return 0, fmt.Errorf("search answered %d: %s", r.Status, r.Body)
		}
		return time.Since(t0), nil
	})
	if err != nil {
		return nil, err
	}
	return []Row{{"search (keyword AND integer range over the day, page of 100), 1 client", percentiles(lat) + b.cpuPerOp(len(lat)), "-"}}, nil
}

func (b *bench) diskPerEvent(dir string) float64 {
	var total int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return float64(total) / float64(b.ingested+b.seeded)
}

// cpuTime is the process's user plus system CPU time so far. The machine the figures are
// taken on is shared, so CPU per event is the stable figure; wall-clock rates are noisy.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package accesslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/floodgate-dev/floodgate/filters"
)

// FilterName and FilterOrder put "access_log" last in the outbound stage;
// it writes on completion (OnDone) when the final status is known.
const (
	FilterName  = "access_log"
	FilterOrder = filters.OrderAccessLog
)

// OutputsKey is the long-lived *Outputs the gateway provides.
var OutputsKey = filters.NewServiceKey[*Outputs]("accesslog.outputs")

// maxField bounds free-text fields (path, reason, error) so one request
// cannot produce a megabyte log line.
const maxField = 2048

func init() {
	filters.RegisterBuiltin(FilterName, filters.EveryChain(), Defaults, build)
}

// Options configure "access_log".
type Options struct {
	// Output is "stdout", "stderr" or a file path.
	Output string `mapstructure:"output" json:"output"`
	// SampleSuccesses is the fraction (0..1) of successful requests
	// logged; failures (any category but success) are always logged.
	SampleSuccesses float64 `mapstructure:"sample_successes" json:"sample_successes"`
	// Passport adds the request's event timeline to failure lines.
	Passport bool `mapstructure:"passport" json:"passport"`
	// ShedLinesPerSecond caps the lines of requests refused by load
	// shedding (local_shed_*) per second; the rest are counted, and the
	// next line logged carries that count (sheds_not_logged). Under
	// overload the gateway refuses thousands a second, and a line each
	// would cost more CPU than the refusal itself. 0 logs none of them.
	ShedLinesPerSecond int `mapstructure:"shed_lines_per_second" json:"shed_lines_per_second"`
}

// Defaults returns the default options: every request to stdout, with
// the passport on failures.
func Defaults() Options {
	return Options{Output: Stdout, SampleSuccesses: 1, Passport: true, ShedLinesPerSecond: 100}
}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if strings.TrimSpace(o.Output) == "" {
		errs = append(errs, errors.New(`output: must be "stdout", "stderr" or a file path`))
	}
	if math.IsNaN(o.SampleSuccesses) || o.SampleSuccesses < 0 || o.SampleSuccesses > 1 {
		errs = append(errs, fmt.Errorf("sample_successes: must be between 0 and 1, got %v", o.SampleSuccesses))
	}
	if o.ShedLinesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("shed_lines_per_second: must be 0 or more, got %d", o.ShedLinesPerSecond))
	}
	return errors.Join(errs...)
}

type filter struct {
	filters.Base
	h        slog.Handler
	sample   float64
	passport bool
	sheds    shedLines
	hook     func(*filters.Context)
}

func build(env *filters.Env, o Options) (filters.Filter, error) {
	outs, ok := OutputsKey.Lookup(env.Services)
	if !ok || outs == nil {
		return nil, errors.New("access_log needs the gateway's accesslog.Outputs service (a wiring bug)")
	}
	w, err := outs.Open(o.Output)
	if err != nil {
		return nil, fmt.Errorf("options.output: %w", err)
	}
	f := &filter{
		Base:     filters.NewBase(FilterName, filters.Outbound, FilterOrder),
		h:        slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}),
		sample:   o.SampleSuccesses,
		passport: o.Passport,
		sheds:    shedLines{perSecond: int64(o.ShedLinesPerSecond)},
	}
	f.hook = f.log
	return f, nil
}

// Apply defers the line to completion, when the body has been streamed
// and duration, bytes and the final category are known.
func (f *filter) Apply(c *filters.Context) error {
	c.OnDone(f.hook)
	return nil
}

// Failed reports whether a request counts as a failure for logging: any
// category outside the success group, a 5xx, or an error.
func Failed(c *filters.Context) bool {
	return c.Category.Group() != filters.GroupSuccess || c.Status >= 500 || c.Err != nil
}

func (f *filter) log(c *filters.Context) {
	failed := Failed(c)
	if !failed && (f.sample <= 0 || f.sample < 1 && rand.Float64() >= f.sample) {
		return
	}
	end := c.End
	if end.IsZero() {
		end = time.Now()
	}
	var notLogged int64
	if isShed(c.Category) {
		ok, skipped := f.sheds.take(end)
		if !ok {
			return
		}
		notLogged = skipped
	}
	level := slog.LevelInfo
	switch {
	case c.Category == filters.CategoryInternalError || c.Category == filters.CategoryFilterError:
		level = slog.LevelError
	case failed:
		level = slog.LevelWarn
	}
	r := slog.NewRecord(end, level, "request", 0)
	r.AddAttrs(
		slog.String("request_id", c.RequestID),
		slog.String("method", c.Method),
		slog.String("host", clip(c.Host)),
		slog.String("path", clip(c.Path)),
		slog.Int("status", c.Status),
		slog.String("category", string(c.Category)),
		slog.String("route", routeName(c)),
	)
	if ip := c.ClientIP(); ip.IsValid() {
		r.AddAttrs(slog.String("client_ip", ip.String()))
		if peer := c.PeerIP(); peer != ip {
			r.AddAttrs(slog.String("peer_ip", peer.String()))
		}
	}
	if t := c.Identity().TLS; t != nil {
		r.AddAttrs(slog.String("tls_version", t.VersionName()))
		if t.ServerName != "" {
			r.AddAttrs(slog.String("sni", t.ServerName))
		}
		if len(t.Names) > 0 {
			r.AddAttrs(slog.String("client_cert", t.Names[0]))
		}
	}
	if c.Origin != "" {
		r.AddAttrs(slog.String("origin", c.Origin), slog.String("instance", c.Instance))
	}
	if c.Priority != filters.Unscored {
		r.AddAttrs(slog.Int("priority", c.Priority))
	}
	if n := len(c.Attempts); n > 0 {
		r.AddAttrs(slog.Int("attempts", n), slog.String("attempt_log", attemptLog(c.Attempts)))
	}
	r.AddAttrs(
		slog.Int64("bytes_in", c.BytesIn),
		slog.Int64("bytes_out", c.BytesOut),
		slog.Float64("duration_ms", ms(end.Sub(c.Start))),
	)
	if c.Reason != "" {
		r.AddAttrs(slog.String("reason", clip(c.Reason)))
	}
	if notLogged > 0 {
		r.AddAttrs(slog.Int64("sheds_not_logged", notLogged))
	}
	if c.Err != nil {
		r.AddAttrs(slog.String("error", clip(c.Err.Error())))
	}
	if failed && f.passport {
		if p := c.Passport(); len(p) > 0 {
			events := filters.PassportLines(p)
			for i := range events {
				events[i] = clip(events[i])
			}
			r.AddAttrs(slog.Any("passport", events))
		}
	}
	// A write error is counted by the output (Outputs.WriteErrors); the
	// request itself has already been answered.
	_ = f.h.Handle(context.Background(), r)
}

func routeName(c *filters.Context) string {
	if c.Route == nil {
		return ""
	}
	return c.Route.Name
}

// attemptLog renders attempts compactly, one per entry separated by "; ":
// "instance outcome status duration[ retry][ hedge]".
func attemptLog(as []filters.Attempt) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.Instance)
		b.WriteByte(' ')
		b.WriteString(a.Outcome)
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(a.Status))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(ms(a.Duration), 'f', 1, 64))
		b.WriteString("ms")
		if a.Retry {
			b.WriteString(" retry")
		}
		if a.Hedge {
			b.WriteString(" hedge")
		}
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func clip(s string) string {
	if len(s) <= maxField {
		return s
	}
	return s[:maxField] + "…"
}

var _ filters.Filter = (*filter)(nil)

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run; it is also the -json output.
type Report struct {
	Target string  `json:"target"`
	Rate   float64 `json:"rate_per_s"`
	// ScheduleSeconds is how long the scheduler ran; ElapsedSeconds adds
	// the wait for the last answers.
	ScheduleSeconds float64 `json:"schedule_seconds"`
	ElapsedSeconds  float64 `json:"elapsed_seconds"`
	// AchievedRate is scheduled requests per second of scheduling.
	AchievedRate float64 `json:"achieved_rate_per_s"`
	// MaxLagMs is the worst delay between a request's due time and its
	// dispatch; large values mean the generator itself could not keep up.
	MaxLagMs float64       `json:"max_lag_ms"`
	Classes  []ClassReport `json:"classes"`
	Total    ClassReport   `json:"total"`
}

// ClassReport is one class's counts. Scheduled = Sent + Dropped;
// Sent = Succeeded + Shed + Errors.
type ClassReport struct {
	Name        string            `json:"name"`
	Weight      int               `json:"weight,omitempty"`
	Scheduled   uint64            `json:"scheduled"`
	Sent        uint64            `json:"sent"`
	Succeeded   uint64            `json:"succeeded"`
	Shed        uint64            `json:"shed"`
	Errors      uint64            `json:"errors"`
	Dropped     uint64            `json:"dropped_by_generator"`
	SuccessRate float64           `json:"success_rate"`
	P50Ms       float64           `json:"p50_ms"`
	P99Ms       float64           `json:"p99_ms"`
	ShedByScope map[string]uint64 `json:"shed_by_scope,omitempty"`
	ErrorKinds  map[string]uint64 `json:"error_kinds,omitempty"`
}

func buildReport(o options, stats []*classStats, sched, elapsed, maxLag time.Duration) *Report {
	r := &Report{
		Target: o.Target, Rate: o.Rate,
		ScheduleSeconds: sched.Seconds(), ElapsedSeconds: elapsed.Seconds(),
		MaxLagMs: float64(maxLag) / float64(time.Millisecond),
	}
	var all histogram
	tot := ClassReport{Name: "TOTAL"}
	for i, st := range stats {
		c := classReport(o.Classes[i].Name, st, &st.latency)
		c.Weight = o.Classes[i].Weight
		r.Classes = append(r.Classes, c)
		all.merge(&st.latency)
		tot.Scheduled += c.Scheduled
		tot.Sent += c.Sent
		tot.Succeeded += c.Succeeded
		tot.Shed += c.Shed
		tot.Errors += c.Errors
		tot.Dropped += c.Dropped
		tot.ShedByScope = addCounts(tot.ShedByScope, c.ShedByScope)
		tot.ErrorKinds = addCounts(tot.ErrorKinds, c.ErrorKinds)
	}
	tot.SuccessRate = rate(tot.Succeeded, tot.Scheduled)
	tot.P50Ms, tot.P99Ms = all.quantile(0.5), all.quantile(0.99)
	r.Total = tot
	if sched > 0 {
		r.AchievedRate = float64(tot.Scheduled) / sched.Seconds()
	}
	return r
}

func classReport(name string, st *classStats, h *histogram) ClassReport {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := ClassReport{
		Name: name, Scheduled: st.scheduled.Load(), Sent: st.sent.Load(),
		Succeeded: st.succeeded.Load(), Shed: st.shed.Load(), Errors: st.errs.Load(),
		Dropped: st.dropped.Load(), P50Ms: h.quantile(0.5), P99Ms: h.quantile(0.99),
		ShedByScope: maps.Clone(st.shedByScope), ErrorKinds: maps.Clone(st.errorKinds),
	}
	c.SuccessRate = rate(c.Succeeded, c.Scheduled)
	return c
}

func rate(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func addCounts(dst, src map[string]uint64) map[string]uint64 {
	for k, v := range src {
		if dst == nil {
			dst = map[string]uint64{}
		}
		dst[k] += v
	}
	return dst
}

func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *Report) writeText(w io.Writer) error {
	fmt.Fprintf(w, "target %s  rate %.0f/s (achieved %.1f/s)  scheduled for %.1fs, done after %.1fs  max dispatch lag %.1fms\n\n",
		r.Target, r.Rate, r.AchievedRate, r.ScheduleSeconds, r.ElapsedSeconds, r.MaxLagMs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tweight\tscheduled\tsent\tok\tshed\terrors\tdropped\tok%\tp50 ms\tp99 ms\t")
	for _, c := range append(slices.Clone(r.Classes), r.Total) {
		w := ""
		if c.Weight > 0 {
			w = fmt.Sprint(c.Weight)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t\n",
			c.Name, w, c.Scheduled, c.Sent, c.Succeeded, c.Shed, c.Errors, c.Dropped, 100*c.SuccessRate, c.P50Ms, c.P99Ms)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Total.ShedByScope) > 0 {
		fmt.Fprintf(w, "\nshed by scope: %s\n", formatCounts(r.Total.ShedByScope))
	}
	if len(r.Total.ErrorKinds) > 0 {
		fmt.Fprintf(w, "errors by kind: %s\n", formatCounts(r.Total.ErrorKinds))
	}
	return nil
}

func formatCounts(m map[string]uint64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

package timeseries

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

const defaultPageSize = 100

// filter is a decoded event filter.
type filter struct{ key, value []byte }

func matchesFilters(ev *storage.Event, fs []filter) bool {
	for _, f := range fs {
		found := false
		for _, it := range ev.Items {
			if bytes.Equal(it.Key, f.key) && bytes.Equal(it.Value, f.value) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// pageStart decodes a page token bound to the query fingerprint fp and says how many events
// the page needs: pageSize, capped by what totalRecordLimit (0: no limit) leaves after the
// tok.N events earlier pages returned. need <= 0 means the limit is reached.
func pageStart(token string, fp uint64, pageSize, totalRecordLimit int) (tok pageToken, need int, aerr *apiError) {
	tok, aerr = decodeToken(token, fp)
	if aerr != nil {
		return tok, 0, aerr
	}
	need = pageSize
	if totalRecordLimit > 0 {
		need = min(need, totalRecordLimit-tok.N)
	}
	return tok, need, nil
}

func pageSizeOf(n int, limits Limits, field string) (int, *apiError) {
	switch {
	case n == 0:
		return min(defaultPageSize, limits.MaxPageSize), nil
	case n < 0 || n > limits.MaxPageSize:
		return 0, badField(field, fmt.Sprintf("must be between 1 and %d", limits.MaxPageSize))
	}
	return n, nil
}

// read answers ReadEventRecords.
func (s *Service) read(ctx context.Context, req *ReadRequest) (*eventsPage, *apiError) {
	ns, aerr := s.lookup(req.Namespace)
	if aerr != nil {
		return nil, aerr
	}
	if msg := checkID(req.TimeSeriesID); msg != "" {
		return nil, badField("timeSeriesId", msg)
	}
	r, aerr := parseInterval(req.TimeInterval, "timeInterval")
	if aerr != nil {
		return nil, aerr
	}
	pageSize, aerr := pageSizeOf(req.PageSize, ns.cfg.Limits, "pageSize")
	if aerr != nil {
		return nil, aerr
	}
	if req.TotalRecordLimit < 0 {
		return nil, badField("totalRecordLimit", "must not be negative (0 means no limit)")
	}
	filters := make([]filter, 0, len(req.EventFilters))
	for i, f := range req.EventFilters {
		k, ok := decodeB64(f.MatchEventItemKey)
		if !ok || len(k) == 0 {
			return nil, badField(fmt.Sprintf("eventFilters[%d].matchEventItemKey", i), "must be non-empty base64")
		}
		v, ok := decodeB64(f.MatchEventItemValue)
		if !ok {
			return nil, badField(fmt.Sprintf("eventFilters[%d].matchEventItemValue", i), "is not valid base64")
		}
		filters = append(filters, filter{k, v})
	}
	fp := fingerprint(OpRead, req.Namespace, req.TimeSeriesID, req.TimeInterval, req.EventFilters, req.TotalRecordLimit)
	tok, need, aerr := pageStart(req.PageToken, fp, pageSize, req.TotalRecordLimit)
	if aerr != nil {
		return nil, aerr
	}
	resp := &eventsPage{}
	if need <= 0 {
		return resp, nil
	}
	var after *storage.Cursor
	if tok.T != nil {
		after = &storage.Cursor{Time: *tok.T, ID: tok.I}
		r.End = min(r.End, after.Time+1)
		if r.End <= r.Start {
			return resp, nil
		}
	}

	ctx, cancel := context.WithTimeout(ctx, ns.cfg.SLOs.Read.Max)
	defer cancel()
	events, partial, err := s.gather(ctx, ns, req.TimeSeriesID, r, after, filters, need+1, s.state.Load().cfg.ReadFanout)
	if err != nil {
		return nil, storageError(ctx, err)
	}
	more := len(events) > need
	if more {
		events = events[:need]
	}
	resp.events = events
	resp.partial = partial
	reachedLimit := req.TotalRecordLimit > 0 && tok.N+len(events) >= req.TotalRecordLimit
	if (more || partial) && !reachedLimit {
		next := pageToken{Q: fp, N: tok.N + len(events), T: tok.T, I: tok.I}
		if n := len(events); n > 0 {
			t := events[n-1].Time
			next.T, next.I = &t, events[n-1].ID
		}
		resp.next = next.encode()
	}
	return resp, nil
}

// partScan is one partition's progress: the matching events it produced and the last event
// it looked at. A scan runs in rounds of a bounded number of matches, each resuming after the
// last event seen, and a scan cut short (by its round limit or the SLO) still yields a safe
// prefix through that position.
type partScan struct {
	p      storage.Partition
	r      storage.TimeRange
	after  *storage.Cursor
	mu     sync.Mutex
	events []storage.Event
	last   *storage.Cursor
	done   bool // the partition has no more events in r
	err    error
}

// gather collects the newest `want` matching events of one series in r, newest first.
//
// Time buckets are visited in waves, newest first; a wave's partitions (time buckets x event
// buckets) are scanned in parallel by at most fanout workers. Each partition first returns
// about twice its fair share of the page; a time bucket is merged as soon as its partitions
// prove which events come first, and only partitions that could still hold earlier events
// are scanned further, with a doubled budget. If ctx's deadline passes, it returns the events
// that are certainly complete (no unscanned event can sort before them) and partial=true.
func (s *Service) gather(ctx context.Context, ns *namespace, tsid string, r storage.TimeRange, after *storage.Cursor, fs []filter, want, fanout int) (out []storage.Event, partial bool, err error) {
	var buckets []timeBucket
	bucketsDesc(ns.slices.fresh(ctx), r, ns.readableFrom(s.now()), func(b timeBucket) bool { buckets = append(buckets, b); return true })
	waveSize := 1
	if len(buckets) > 0 {
		waveSize = max(1, fanout/buckets[0].eventBuckets)
	}
	for len(buckets) > 0 && len(out) < want {
		n := min(waveSize, len(buckets))
		wave := buckets[:n]
		buckets = buckets[n:]
		waveSize = min(waveSize*2, 64) // sparse series: widen the wave to cut round trips

		need := want - len(out)
		var scans []*partScan
		groups := make([][]*partScan, 0, n)
		budgets := make([]int, 0, n)
		for _, b := range wave {
			br := b.clip(r)
			var a *storage.Cursor
			if after != nil && b.contains(after.Time) {
				a = after
			}
			per := b.eventBuckets
			group := make([]*partScan, 0, per)
			for eb := 0; eb < per; eb++ {
				group = append(group, &partScan{
					p:     storage.Partition{Slice: b.slice, TimeSeriesID: tsid, Bucket: b.start, EventBucket: uint16(eb)},
					r:     br,
					after: a,
				})
			}
			groups = append(groups, group)
			budgets = append(budgets, min(need, max(8, 2*need/per+1)))
			scans = append(scans, group...)
		}
		// One round for the whole wave; event-bucket counts can differ between slices, so
		// each group keeps the budget its own count calls for (the smallest is used here).
		s.runScans(ctx, ns.name, scans, fs, slices.Min(budgets), fanout)

		for gi, group := range groups {
			groupBudget := budgets[gi]
			for {
				need := want - len(out)
				safe, complete, serr := mergeGroup(group)
				if serr != nil && ctx.Err() == nil {
					return nil, false, serr
				}
				if complete {
					out = append(out, safe...)
					break
				}
				if len(safe) >= need {
					return append(out, safe[:need]...), false, nil
				}
				if ctx.Err() != nil {
					return append(out, safe...), true, nil
				}
				var more []*partScan
				for _, ps := range group {
					if !ps.done {
						more = append(more, ps)
					}
				}
				groupBudget = min(need, groupBudget*2)
				s.runScans(ctx, ns.name, more, fs, groupBudget, fanout)
			}
			if len(out) >= want {
				return out[:want], false, nil
			}
		}
	}
	return out, false, nil
}

// runScans runs one round of each scan, at most fanout at a time, each round stopping after
// budget new matches.
func (s *Service) runScans(ctx context.Context, ns string, scans []*partScan, fs []filter, budget, fanout int) {
	if len(scans) == 1 {
		scans[0].run(ctx, s.engine, ns, fs, budget) // no hand-off for the common narrow case
		return
	}
	work := make(chan *partScan)
	var wg sync.WaitGroup
	for w := 0; w < min(fanout, len(scans)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ps := range work {
				ps.run(ctx, s.engine, ns, fs, budget)
			}
		}()
	}
	for _, ps := range scans {
		if ctx.Err() != nil {
			break
		}
		work <- ps
	}
	close(work)
	wg.Wait()
}

func (ps *partScan) run(ctx context.Context, engine storage.Engine, ns string, fs []filter, budget int) {
	ps.mu.Lock()
	from := ps.after
	if ps.last != nil {
		from = ps.last
	}
	ps.mu.Unlock()
	matched := 0
	stopped := false
	err := engine.ScanPartition(ctx, ns, ps.p, ps.r, from, func(ev storage.Event) bool {
		keep := matchesFilters(&ev, fs)
		ps.mu.Lock()
		if keep {
			ps.events = append(ps.events, ev)
			matched++
		}
		ps.last = &storage.Cursor{Time: ev.Time, ID: ev.ID}
		ps.mu.Unlock()
		if matched >= budget {
			stopped = true
			return false
		}
		return true
	})
	ps.mu.Lock()
	ps.err = err
	ps.done = err == nil && !stopped
	ps.mu.Unlock()
}

// mergeGroup merges the event buckets of one time bucket newest first. complete reports that
// every partition is exhausted; otherwise only the events that no unfinished partition could
// still precede are returned (none if some partition has not scanned anything yet). err is
// the first scan error, including a context error.
func mergeGroup(group []*partScan) (safe []storage.Event, complete bool, err error) {
	complete = true
	var watermark *storage.Cursor // the least-advanced position among unfinished scans
	blocked := false
	var merged []storage.Event
	for _, ps := range group {
		ps.mu.Lock()
		merged = append(merged, ps.events...)
		if ps.err != nil && err == nil {
			err = ps.err
		}
		if !ps.done {
			complete = false
			switch {
			case ps.last == nil:
				blocked = true
			case watermark == nil || ps.last.After(watermark.Time, watermark.ID):
				c := *ps.last
				watermark = &c
			}
		}
		ps.mu.Unlock()
	}
	slices.SortFunc(merged, func(a, b storage.Event) int {
		switch {
		case a.Time > b.Time:
			return -1
		case a.Time < b.Time:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	if complete {
		return merged, true, err
	}
	if blocked {
		return nil, false, err
	}
	n := 0
	for n < len(merged) && !watermark.After(merged[n].Time, merged[n].ID) {
		n++
	}
	return merged[:n], false, err
}

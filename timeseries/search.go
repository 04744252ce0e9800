package timeseries

import (
	"context"
	"errors"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// searchRun walks the index newest first over r, one time bucket at a time, and calls emit for
// every event that matches the query, in ref order, starting after `after`. It stops when emit
// returns false. A context deadline ends the walk with partial=true: what was emitted is an
// exact prefix of the full result, so a page token taken from it has no gaps.
func (s *Service) searchRun(ctx context.Context, ns *namespace, q *qnode, r storage.TimeRange, after *storage.Ref, emit func(storage.Event) bool) (partial bool, err error) {
	if after != nil {
		r.End = min(r.End, after.Time+1)
	}
	bucketsDesc(ns.slices.fresh(ctx), r, ns.readableFrom(s.now()), func(b timeBucket) bool {
		var a *storage.Ref
		if after != nil && b.contains(after.Time) {
			a = after
		}
		it := s.buildIter(q, ns.name, b.slice, b.start, b.clip(r), a)
		for {
			ref, ok, ierr := it.peek(ctx)
			if ierr != nil {
				err = ierr
				return false
			}
			if !ok {
				return true
			}
			it.advance()
			p := storage.Partition{Slice: b.slice, TimeSeriesID: ref.TimeSeriesID, Bucket: b.start, EventBucket: eventBucket(ref.Time, ref.ID, b.eventBuckets)}
			ev, found, gerr := s.engine.GetEvent(ctx, ns.name, p, ref.Time, ref.ID)
			if gerr != nil {
				err = gerr
				return false
			}
			if !found || !q.matches(&ev) {
				continue
			}
			if !emit(ev) {
				return false
			}
		}
	})
	if err != nil {
		return errors.Is(err, context.DeadlineExceeded), ignoreDeadline(err)
	}
	return false, nil
}

func ignoreDeadline(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// queryScope validates what search and aggregation share: the namespace,
// the interval and the query over the namespace's indexed fields.
func (s *Service) queryScope(nsName string, interval TimeInterval, query *SearchQuery) (*namespace, storage.TimeRange, *qnode, *apiError) {
	ns, aerr := s.lookup(nsName)
	if aerr != nil {
		return nil, storage.TimeRange{}, nil, aerr
	}
	r, aerr := parseInterval(interval, "timeInterval")
	if aerr != nil {
		return nil, storage.TimeRange{}, nil, aerr
	}
	q, aerr := compileQuery(query, ns.cfg.Index.FieldMapping, "searchQuery")
	if aerr != nil {
		return nil, storage.TimeRange{}, nil, aerr
	}
	return ns, r, q, nil
}

// search answers SearchEventRecords.
func (s *Service) search(ctx context.Context, req *SearchRequest) (*eventsPage, *apiError) {
	ns, r, q, aerr := s.queryScope(req.Namespace, req.TimeInterval, req.SearchQuery)
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
	fp := fingerprint(OpSearch, req.Namespace, req.TimeInterval, req.SearchQuery, req.TotalRecordLimit)
	tok, need, aerr := pageStart(req.PageToken, fp, pageSize, req.TotalRecordLimit)
	if aerr != nil {
		return nil, aerr
	}
	resp := &eventsPage{}
	if need <= 0 {
		return resp, nil
	}
	var after *storage.Ref
	if tok.T != nil {
		after = &storage.Ref{Time: *tok.T, TimeSeriesID: tok.S, ID: tok.I}
	}
	ctx, cancel := context.WithTimeout(ctx, ns.cfg.SLOs.Read.Max)
	defer cancel()
	var events []storage.Event
	partial, err := s.searchRun(ctx, ns, q, r, after, func(ev storage.Event) bool {
		events = append(events, ev)
		return len(events) <= need
	})
	if err != nil {
		return nil, storageError(ctx, err)
	}
	more := len(events) > need
	if more {
		events = events[:need]
	}
	resp.partial = partial
	resp.events = events
	reachedLimit := req.TotalRecordLimit > 0 && tok.N+len(events) >= req.TotalRecordLimit
	if (more || partial) && !reachedLimit {
		next := pageToken{Q: fp, N: tok.N + len(events), T: tok.T, S: tok.S, I: tok.I}
		if n := len(events); n > 0 {
			t := events[n-1].Time
			next.T, next.S, next.I = &t, events[n-1].TimeSeriesID, events[n-1].ID
		}
		resp.next = next.encode()
	}
	return resp, nil
}

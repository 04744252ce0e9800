package timeseries

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"

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
	bucketsDesc(ns.slices.list(), r, ns.readableFrom(s.now()), func(b timeBucket) bool {
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
func (s *Service) search(ctx context.Context, req *SearchRequest) (*EventsResponse, *apiError) {
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
	tok, aerr := decodeToken(req.PageToken, fp)
	if aerr != nil {
		return nil, aerr
	}
	need := pageSize
	if req.TotalRecordLimit > 0 {
		need = min(need, req.TotalRecordLimit-tok.N)
	}
	resp := &EventsResponse{Events: []EventRecord{}}
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
	resp.Partial = partial
	for _, ev := range events {
		resp.Events = append(resp.Events, toRecord(ev))
	}
	reachedLimit := req.TotalRecordLimit > 0 && tok.N+len(events) >= req.TotalRecordLimit
	if (more || partial) && !reachedLimit {
		next := pageToken{Q: fp, N: tok.N + len(events), T: tok.T, S: tok.S, I: tok.I}
		if n := len(events); n > 0 {
			t := events[n-1].Time
			next.T, next.S, next.I = &t, events[n-1].TimeSeriesID, events[n-1].ID
		}
		resp.NextPageToken = next.encode()
	}
	return resp, nil
}

// aggregate answers AggregateEventRecords: it counts, per distinct value of one item key, the
// matching events carrying it. The whole interval is counted on every call (bounded by
// limits.max_distinct_values and the read SLO); pages are slices of the sorted result.
func (s *Service) aggregate(ctx context.Context, req *AggregateRequest) (*AggregateResponse, *apiError) {
	ns, r, q, aerr := s.queryScope(req.Namespace, req.TimeInterval, req.SearchQuery)
	if aerr != nil {
		return nil, aerr
	}
	d := req.AggregationQuery.Distinct
	if d == nil {
		return nil, badField("aggregationQuery.distinct", "is required")
	}
	key, ok := decodeB64(d.EventItemKey)
	if !ok || len(key) == 0 {
		return nil, badField("aggregationQuery.distinct.eventItemKey", "must be non-empty base64")
	}
	pageSize, aerr := pageSizeOf(d.PageSize, ns.cfg.Limits, "aggregationQuery.distinct.pageSize")
	if aerr != nil {
		return nil, aerr
	}
	fp := fingerprint(OpAggregate, req.Namespace, req.TimeInterval, req.SearchQuery, d.EventItemKey)
	tok, aerr := decodeToken(req.PageToken, fp)
	if aerr != nil {
		return nil, aerr
	}
	ctx, cancel := context.WithTimeout(ctx, ns.cfg.SLOs.Read.Max)
	defer cancel()
	counts := map[string]int64{}
	tooMany := false
	partial, err := s.searchRun(ctx, ns, q, r, nil, func(ev storage.Event) bool {
		for _, it := range ev.Items {
			if string(it.Key) != string(key) {
				continue
			}
			if _, seen := counts[string(it.Value)]; !seen && len(counts) >= ns.cfg.Limits.MaxDistinctValues {
				tooMany = true
				return false
			}
			counts[string(it.Value)]++
			break
		}
		return true
	})
	if err != nil {
		return nil, storageError(ctx, err)
	}
	if tooMany {
		return nil, &apiError{status: http.StatusUnprocessableEntity, field: "aggregationQuery.distinct.eventItemKey", eventIndex: -1, reason: "too_many_values",
			msg: fmt.Sprintf("aggregationQuery.distinct.eventItemKey: more than %d distinct values (limits.max_distinct_values); narrow the interval or query", ns.cfg.Limits.MaxDistinctValues)}
	}
	values := make([]DistinctValue, 0, len(counts))
	for v, c := range counts {
		values = append(values, DistinctValue{Value: v, Count: c})
	}
	sort.Slice(values, func(i, j int) bool {
		if values[i].Count != values[j].Count {
			return values[i].Count > values[j].Count
		}
		return values[i].Value < values[j].Value
	})
	resp := &AggregateResponse{Distinct: []DistinctValue{}, Partial: partial}
	start := min(tok.O, len(values))
	end := min(start+pageSize, len(values))
	for _, v := range values[start:end] {
		resp.Distinct = append(resp.Distinct, DistinctValue{Value: base64.StdEncoding.EncodeToString([]byte(v.Value)), Count: v.Count})
	}
	if end < len(values) {
		resp.NextPageToken = pageToken{Q: fp, O: end}.encode()
	}
	return resp, nil
}

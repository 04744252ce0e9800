package timeseries

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// aggregate answers AggregateEventRecords: it counts, per distinct value of one item key, the
// matching events carrying it. The whole interval is counted on every call (bounded by
// limits.max_distinct_values and the read SLO); pages are slices of the sorted result.
//
// When the counted key is an indexed field, the count comes from the per-bucket index rows
// alone (one sequential scan per time bucket, buckets in parallel, the query evaluated on the
// row's indexed values): no event is loaded. Otherwise every matching event is loaded (one
// point read each), which bounds what one call can count within the read SLO.
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
	var (
		counts  map[string]int64
		tooMany bool
		partial bool
		err     error
	)
	_, indexed := ns.cfg.Index.FieldMapping[string(key)]
	if indexed {
		counts, tooMany, partial, err = s.countFromIndexRows(ctx, ns, q, r, string(key))
	}
	if !indexed || errors.Is(err, storage.ErrNotSupported) {
		counts, tooMany, partial, err = s.countFromEvents(ctx, ns, q, r, key)
	}
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

// distinctCounter counts values under the max_distinct_values bound.
type distinctCounter struct {
	counts  map[string]*int64
	limit   int
	tooMany bool
}

func (c *distinctCounter) add(v []byte) bool {
	if n, ok := c.counts[string(v)]; ok {
		*n++
		return true
	}
	if len(c.counts) >= c.limit {
		c.tooMany = true
		return false
	}
	one := int64(1)
	c.counts[string(v)] = &one
	return true
}

// countFromIndexRows scans the index rows of every readable time bucket in r, at most
// read_fanout buckets at a time, and counts the raw value of field among rows matching q.
// A deadline makes the answer partial (some buckets uncounted or counted in part).
func (s *Service) countFromIndexRows(ctx context.Context, ns *namespace, q *qnode, r storage.TimeRange, field string) (map[string]int64, bool, bool, error) {
	var buckets []timeBucket
	bucketsDesc(ns.slices.fresh(ctx), r, ns.readableFrom(s.now()), func(b timeBucket) bool { buckets = append(buckets, b); return true })
	limit := ns.cfg.Limits.MaxDistinctValues
	workers := min(len(buckets), s.state.Load().cfg.ReadFanout, max(1, runtime.GOMAXPROCS(0)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan timeBucket)
	results := make(chan *distinctCounter, workers)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			c := &distinctCounter{counts: map[string]*int64{}, limit: limit}
			var firstErr error
			for b := range next {
				if firstErr != nil || c.tooMany {
					continue
				}
				err := s.engine.ScanIndexRows(ctx, ns.name, b.slice, b.start, b.clip(r), func(_ storage.Ref, entries []storage.IndexEntry) bool {
					if !q.matchesEntries(entries) {
						return true
					}
					for i := range entries {
						if entries[i].Field == field {
							return c.add(entries[i].Raw)
						}
					}
					return true
				})
				if err != nil {
					firstErr = err
				}
				if c.tooMany {
					cancel()
				}
			}
			results <- c
			errs <- firstErr
		}()
	}
	for _, b := range buckets {
		if ctx.Err() != nil {
			break
		}
		next <- b
	}
	close(next)
	total := map[string]int64{}
	tooMany := false
	var firstErr error
	for w := 0; w < workers; w++ {
		c := <-results
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
		tooMany = tooMany || c.tooMany
		for v, n := range c.counts {
			total[v] += *n
		}
	}
	if tooMany || len(total) > limit {
		return nil, true, false, nil
	}
	if firstErr != nil {
		if errors.Is(firstErr, context.DeadlineExceeded) || errors.Is(firstErr, context.Canceled) && ctx.Err() != nil {
			return total, false, true, nil
		}
		return nil, false, false, firstErr
	}
	return total, false, ctx.Err() != nil, nil
}

// countFromEvents walks the query's index matches and loads each event to read key.
func (s *Service) countFromEvents(ctx context.Context, ns *namespace, q *qnode, r storage.TimeRange, key []byte) (map[string]int64, bool, bool, error) {
	c := &distinctCounter{counts: map[string]*int64{}, limit: ns.cfg.Limits.MaxDistinctValues}
	partial, err := s.searchRun(ctx, ns, q, r, nil, func(ev storage.Event) bool {
		for _, it := range ev.Items {
			if string(it.Key) == string(key) {
				return c.add(it.Value)
			}
		}
		return true
	})
	if err != nil || c.tooMany {
		return nil, c.tooMany, false, err
	}
	out := make(map[string]int64, len(c.counts))
	for v, n := range c.counts {
		out[v] = *n
	}
	return out, false, partial, nil
}

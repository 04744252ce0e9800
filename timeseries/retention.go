package timeseries

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// retentionLoop drops expired slices every RetentionInterval until Close.
func (s *Service) retentionLoop() {
	defer close(s.retentionDone)
	for {
		interval := s.state.Load().cfg.RetentionInterval
		t := time.NewTimer(interval)
		select {
		case <-s.stopRetention:
			t.Stop()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		if _, err := s.EnforceRetention(ctx); err != nil {
			s.logf("timeseries: retention: %v", err)
		}
		cancel()
	}
}

// DroppedSlice names a slice removed by retention.
type DroppedSlice struct {
	Namespace string
	Start     time.Time
}

// EnforceRetention drops, whole, every slice whose end is at least retention.deleteAfter in
// the past. Rows are never deleted one by one.
func (s *Service) EnforceRetention(ctx context.Context) ([]DroppedSlice, error) {
	st := s.state.Load()
	names := make([]string, 0, len(st.namespaces))
	for n := range st.namespaces {
		names = append(names, n)
	}
	sort.Strings(names)
	now := s.now().UnixMilli()
	var dropped []DroppedSlice
	var errs []error
	for _, name := range names {
		ns := st.namespaces[name]
		slices, err := s.engine.Slices(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: list slices: %w", name, err))
			continue
		}
		for _, start := range slices {
			end := start + ns.layout.sliceMs
			if end+ns.cfg.Retention.DeleteAfter.Milliseconds() > now {
				break // slices are ascending; the rest are younger
			}
			if err := s.engine.DropSlice(ctx, name, start); err != nil {
				errs = append(errs, fmt.Errorf("namespace %s: drop slice %s: %w", name, formatTime(start), err))
				break
			}
			dropped = append(dropped, DroppedSlice{Namespace: name, Start: time.UnixMilli(start).UTC()})
		}
	}
	return dropped, errors.Join(errs...)
}

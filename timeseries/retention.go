package timeseries

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
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

// EnforceRetention applies each slice's life cycle from its own bounds (the slice table, not
// today's time_partition): a slice whose end is retention.close_after in the past is marked
// closed (reads and writes already ignore it), and one whose end is retention.delete_after in
// the past is dropped whole. Rows are never deleted one by one.
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
		for _, m := range ns.slices.fresh(ctx) {
			switch {
			case m.End+ns.cfg.Retention.DeleteAfter.Milliseconds() <= now:
				if err := ns.slices.drop(ctx, m.Start); err != nil {
					errs = append(errs, fmt.Errorf("namespace %s: drop slice %s: %w", name, formatTime(m.Start), err))
					continue
				}
				dropped = append(dropped, DroppedSlice{Namespace: name, Start: time.UnixMilli(m.Start).UTC()})
			case m.End+ns.cfg.Retention.CloseAfter.Milliseconds() <= now && m.Status != storage.SliceClosed:
				if err := ns.slices.setStatus(ctx, m.Start, storage.SliceClosed); err != nil {
					errs = append(errs, fmt.Errorf("namespace %s: close slice %s: %w", name, formatTime(m.Start), err))
				}
			}
		}
	}
	return dropped, errors.Join(errs...)
}

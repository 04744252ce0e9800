package tsbench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// diskFloor times what every durable write waits for at least once: appending 1 KiB to a
// file in the store's directory and fdatasync-ing it (what pebble does to its WAL), from one
// writer, under the same background work as the sync-write phase that follows. Concurrent
// durable writes share syncs (pebble's commit pipeline), so a write that arrives while a sync
// is in flight waits for the rest of that one and then its own: two syncs are the tail of the
// 8-writer phase, and this row shows the disk's part of it.
func (b *bench) diskFloor() ([]Row, error) {
	f, err := os.CreateTemp(b.dir, "fsync-probe-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	block := make([]byte, 1024)
	lat, err := b.timed(1, func(int) (time.Duration, error) {
		t0 := time.Now()
		if _, err := f.Write(block); err != nil {
			return 0, err
		}
		if err := syncData(f); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	})
	if err != nil {
		return nil, err
	}
	return []Row{{
		Name:   fmt.Sprintf("disk floor: 1 KiB append + fdatasync in %s, 1 writer", filepath.Base(b.dir)),
		Figure: percentiles(lat),
		Target: "- (a grouped durable write can wait for two)",
	}}, nil
}

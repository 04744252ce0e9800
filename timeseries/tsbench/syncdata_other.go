//go:build !linux

package tsbench

import "os"

// syncData falls back to fsync where fdatasync is not available.
func syncData(f *os.File) error { return f.Sync() }

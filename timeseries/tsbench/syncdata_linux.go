package tsbench

import (
	"os"
	"syscall"
)

// syncData is fdatasync, the call pebble makes on its WAL.
func syncData(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

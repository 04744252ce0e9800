package edge

import "syscall"

// maxAutoConnections caps the automatic connection limit.
const maxAutoConnections = 100000

// AutoMaxConnections is the connection cap used when config leaves it 0:
// half the process's open-file limit (the other half is for origin
// connections, the store, logs and the admin listener), at most 100000.
// A proxied request holds two descriptors (client and origin), so a cap at
// or above the limit lets idle clients exhaust descriptors and stop the
// gateway from reaching its origins.
func AutoMaxConnections() int {
	limit, ok := openFileLimit()
	if !ok {
		return maxAutoConnections
	}
	return int(min(max(limit/2, 64), maxAutoConnections))
}

// OpenFileLimit returns the process's soft RLIMIT_NOFILE (Go raises it to
// the hard limit at start-up), and false where it cannot be read.
func OpenFileLimit() (uint64, bool) { return openFileLimit() }

func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 || rl.Cur == ^uint64(0) {
		return 0, false
	}
	return rl.Cur, true
}

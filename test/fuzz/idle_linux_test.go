package fuzz

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// receivedBytes is how many bytes the kernel has received on c in all.
func receivedBytes(c net.Conn) (int64, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	var n int64
	_, ok = onFD(sc, func(fd int) (int, error) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
		if err != nil {
			return 0, err
		}
		n = int64(info.Bytes_received)
		return 0, nil
	})
	return n, ok
}

// acceptQueueLen is how many established connections wait to be accepted
// on ln (for a listening socket Linux reports it as tcpi_unacked).
func acceptQueueLen(ln net.Listener) (int, bool) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return 0, false
	}
	return onFD(sc, func(fd int) (int, error) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
		if err != nil {
			return 0, err
		}
		return int(info.Unacked), nil
	})
}

// onFD runs f on the descriptor behind sc.
func onFD(sc syscall.Conn, f func(fd int) (int, error)) (int, bool) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int
	var ferr error
	if err := rc.Control(func(fd uintptr) { n, ferr = f(int(fd)) }); err != nil || ferr != nil {
		return 0, false
	}
	return n, true
}

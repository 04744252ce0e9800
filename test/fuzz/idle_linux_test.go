package fuzz

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unreadBytes is how many bytes wait unread in c's kernel receive queue.
func unreadBytes(c net.Conn) (int, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	return ioctlOnFD(sc, func(fd int) (int, error) { return unix.IoctlGetInt(fd, unix.SIOCINQ) })
}

// acceptQueueLen is how many established connections wait to be accepted
// on ln (for a listening socket Linux reports it as tcpi_unacked).
func acceptQueueLen(ln net.Listener) (int, bool) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return 0, false
	}
	return ioctlOnFD(sc, func(fd int) (int, error) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
		if err != nil {
			return 0, err
		}
		return int(info.Unacked), nil
	})
}

func ioctlOnFD(sc syscall.Conn, f func(fd int) (int, error)) (int, bool) {
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

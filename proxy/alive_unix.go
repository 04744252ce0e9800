//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// alive peeks at a pooled connection without blocking. An origin that
// closed the connection while it sat idle has left an EOF (or a reset) in
// the socket; sending a request into it would fail after the request bytes
// are gone, and a non-idempotent request could not be retried. One
// non-blocking recv per reused connection is the price of never surfacing
// that race to a client.
func alive(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ok = true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK || rerr == syscall.EINTR:
			// Nothing to read: the connection is idle and open.
		case rerr != nil:
			ok = false
		case n == 0:
			ok = false // orderly close by the origin
		default:
			ok = false // bytes nobody asked for: the stream is out of sync
		}
		return true
	})
	return ok && err == nil
}

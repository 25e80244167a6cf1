//go:build linux

package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// waiter parks the reader in poll(2) until the backend's descriptor is
// readable or the eventfd is signalled (by Close or a link-state change).
// wait is for the reader goroutine only; wake is safe from anywhere.
type waiter struct {
	conn syscall.RawConn
	efd  int
	fds  [2]unix.PollFd
	// fn is w.poll as a func value, made once (a method value allocates
	// each time it is taken).
	fn  func(fd uintptr)
	err error
	buf [8]byte
}

func newWaiter(conn syscall.RawConn) (*waiter, error) {
	if conn == nil {
		return nil, errors.New("no descriptor to poll")
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &waiter{conn: conn, efd: efd}
	w.fn = w.poll
	return w, nil
}

func (w *waiter) poll(fd uintptr) {
	w.fds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	w.fds[1] = unix.PollFd{Fd: int32(w.efd), Events: unix.POLLIN}
	for {
		_, err := unix.Poll(w.fds[:], -1)
		if err == unix.EINTR {
			continue
		}
		w.err = err
		return
	}
}

// wait blocks until the descriptor is readable (or reports an error
// condition) or wake was called, and returns the descriptor's revents.
func (w *waiter) wait() (revents int16, err error) {
	if err := w.conn.Control(w.fn); err != nil {
		return 0, err
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.fds[1].Revents&unix.POLLIN != 0 {
		// Reset the eventfd; whoever signalled it left a flag to check.
		_, _ = unix.Read(w.efd, w.buf[:])
	}
	return w.fds[0].Revents, nil
}

// wake makes a current or the next wait return.
func (w *waiter) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(w.efd, one[:])
}

func (w *waiter) close() { unix.Close(w.efd) }

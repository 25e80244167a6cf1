//go:build linux

package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
)

// The link-state monitor: an rtnetlink socket subscribed to RTNLGRP_LINK,
// opened in the interface's network namespace, that turns RTM_NEWLINK and
// RTM_DELLINK messages about the endpoint's ifindex into link.LinkState
// changes. Up is IFF_UP and IFF_RUNNING (administratively up and
// operationally up: carrier, or for TUN/TAP a program attached); Gone is
// RTM_DELLINK for the interface itself (family AF_UNSPEC: a bridge sends
// RTM_DELLINK with family AF_BRIDGE when a port merely leaves it).

// linkMsg is what the monitor uses of one rtnetlink link message.
type linkMsg struct {
	typ    uint16 // RTM_NEWLINK or RTM_DELLINK
	seq    uint32
	family uint8
	index  int32
	flags  uint32
}

// nlError is an NLMSG_ERROR message: the kernel's answer to a request
// that failed (errno != 0) or an acknowledgement (errno == 0).
type nlError struct {
	seq   uint32
	errno unix.Errno
}

// parseLinkMessages walks a buffer of netlink messages as one recv(2)
// returns them and calls link for each RTM_NEWLINK/RTM_DELLINK and nlerr
// for each NLMSG_ERROR. It stops at the first malformed header and
// returns an error then. It does not allocate.
func parseLinkMessages(b []byte, onLink func(linkMsg), onErr func(nlError)) error {
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return fmt.Errorf("netlink: %d trailing bytes, shorter than a message header", len(b))
		}
		l := binary.NativeEndian.Uint32(b[0:4])
		typ := binary.NativeEndian.Uint16(b[4:6])
		seq := binary.NativeEndian.Uint32(b[8:12])
		if l < unix.NLMSG_HDRLEN || uint64(l) > uint64(len(b)) {
			return fmt.Errorf("netlink: message length %d in a buffer of %d bytes", l, len(b))
		}
		body := b[unix.NLMSG_HDRLEN:l]
		switch typ {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK:
			// struct ifinfomsg { u8 family, pad; u16 type; s32 index;
			// u32 flags, change; }
			if len(body) >= unix.SizeofIfInfomsg {
				onLink(linkMsg{
					typ:    typ,
					seq:    seq,
					family: body[0],
					index:  int32(binary.NativeEndian.Uint32(body[4:8])),
					flags:  binary.NativeEndian.Uint32(body[8:12]),
				})
			}
		case unix.NLMSG_ERROR:
			if len(body) >= 4 {
				e := int32(binary.NativeEndian.Uint32(body[0:4]))
				onErr(nlError{seq: seq, errno: unix.Errno(-e)})
			}
		}
		// Messages are padded to 4 bytes (NLMSG_ALIGN).
		next := (uint64(l) + 3) &^ 3
		if next >= uint64(len(b)) {
			return nil
		}
		b = b[next:]
	}
	return nil
}

// stateOf is the link state a message about the interface says.
func stateOf(m linkMsg) (st link.LinkState, ok bool) {
	if m.family != unix.AF_UNSPEC {
		return st, false
	}
	if m.typ == unix.RTM_DELLINK {
		return link.LinkState{Gone: true, Err: errors.New("rtnetlink: interface deleted")}, true
	}
	return link.LinkState{Up: m.flags&unix.IFF_UP != 0 && m.flags&unix.IFF_RUNNING != 0}, true
}

// monitor is the rtnetlink socket of one endpoint.
type monitor struct {
	f     *os.File
	index int32
	seq   uint32
	buf   []byte
	last  link.LinkState
}

// openMonitor subscribes to link notifications in the calling thread's
// network namespace and asks the kernel for the interface's state, which
// it returns. It fails when the interface does not exist there.
func openMonitor(index int) (*monitor, link.LinkState, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, link.LinkState{}, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, link.LinkState{}, fmt.Errorf("netlink bind RTMGRP_LINK: %w", err)
	}
	// Room for bursts of notifications (the kernel caps it at
	// net.core.rmem_max); an overflow costs a re-query, not a lost state.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	m := &monitor{f: os.NewFile(uintptr(fd), "rtnetlink"), index: int32(index), buf: make([]byte, 64<<10)}
	st, err := m.query()
	if err != nil {
		m.f.Close()
		return nil, link.LinkState{}, err
	}
	m.last = st
	return m, st, nil
}

// request sends RTM_GETLINK for the interface; the answer arrives on the
// socket like a notification.
func (m *monitor) request() (seq uint32, err error) {
	m.seq++
	var req [unix.NLMSG_HDRLEN + unix.SizeofIfInfomsg]byte
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:6], unix.RTM_GETLINK)
	binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:12], m.seq)
	binary.NativeEndian.PutUint32(req[unix.NLMSG_HDRLEN+4:], uint32(m.index))
	if _, err := m.f.Write(req[:]); err != nil {
		return 0, fmt.Errorf("netlink RTM_GETLINK: %w", err)
	}
	return m.seq, nil
}

// query asks for the interface's state and reads until the answer,
// taking notifications that came first into account.
func (m *monitor) query() (link.LinkState, error) {
	seq, err := m.request()
	if err != nil {
		return link.LinkState{}, err
	}
	if err := m.f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return link.LinkState{}, fmt.Errorf("netlink: %w", err)
	}
	defer m.f.SetReadDeadline(time.Time{})
	var (
		st      link.LinkState
		answer  bool
		failure error
	)
	for !answer {
		n, err := m.f.Read(m.buf)
		if err != nil {
			return link.LinkState{}, fmt.Errorf("netlink read: %w", err)
		}
		perr := parseLinkMessages(m.buf[:n], func(lm linkMsg) {
			if lm.index != m.index {
				return
			}
			if s, ok := stateOf(lm); ok {
				st = s
				if lm.seq == seq && lm.typ == unix.RTM_NEWLINK {
					answer = true
				}
			}
		}, func(e nlError) {
			if e.seq == seq && e.errno != 0 {
				answer, failure = true, e.errno
			}
		})
		if perr != nil {
			return link.LinkState{}, perr
		}
	}
	if failure != nil {
		return link.LinkState{}, fmt.Errorf("netlink RTM_GETLINK index %d: %w", m.index, failure)
	}
	return st, nil
}

func (m *monitor) close() { m.f.Close() }

// monitor is the monitor goroutine: it reads notifications until Close
// closes the socket or the interface is gone, posting every change of
// state to the reader.
func (c *Core) monitor(done chan struct{}) {
	defer close(done)
	m := c.mon
	post := func(st link.LinkState) bool {
		if st.Up == m.last.Up && st.Gone == m.last.Gone {
			return false
		}
		m.last = st
		c.postState(st)
		return st.Gone
	}
	for {
		n, err := m.f.Read(m.buf)
		if err != nil {
			if c.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, unix.ENOBUFS) {
				// Notifications were lost: ask again.
				c.log.Debug("link-state notifications overflowed; re-reading the state")
				if _, err := m.request(); err != nil {
					c.log.Warn("link-state monitor", "err", err)
				}
				continue
			}
			c.log.Warn("link-state monitor stopped", "err", err)
			return
		}
		gone := false
		perr := parseLinkMessages(m.buf[:n], func(lm linkMsg) {
			if lm.index != m.index || gone {
				return
			}
			if st, ok := stateOf(lm); ok && post(st) {
				gone = true
			}
		}, func(e nlError) {
			if e.errno == unix.ENODEV && !gone {
				// A re-query found no interface.
				gone = post(link.LinkState{Gone: true, Err: fmt.Errorf("rtnetlink: %w", e.errno)})
			}
		})
		if perr != nil {
			c.log.Warn("link-state monitor: bad message", "err", perr)
		}
		if gone {
			return
		}
	}
}

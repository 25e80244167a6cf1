//go:build linux

// Package afpacket is a link.Endpoint on a named Linux interface, through an
// AF_PACKET raw socket (SOCK_RAW, ETH_P_ALL) bound to it.
//
// The socket comes from github.com/mdlayher/packet, which gives a
// poller-integrated socket (so Close unblocks the reader) and lets a BPF
// filter be attached before bind(2). packet.Conn.ReadFrom does not report the
// packet type, so the endpoint drops its own transmitted frames
// (PACKET_OUTGOING) and frames for other hosts (PACKET_OTHERHOST, seen when
// the interface is promiscuous, e.g. a bridge port) with that BPF filter, in
// the kernel, with no window before it applies. Multicast memberships are set
// with setsockopt(PACKET_ADD_MEMBERSHIP/PACKET_DROP_MEMBERSHIP) on the raw
// fd from x/sys/unix, because packet v1.1.2 has no membership calls.
//
// SetMulticastFilter programs the interface's real receive filter (visible
// in `ip maddr show dev IF` as `link 01:00:5e:...`): exact
// PACKET_MR_MULTICAST entries up to Options.FilterCapacity, and a
// PACKET_MR_ALLMULTI membership beyond that. The kernel drops every
// membership when the socket closes. Because veth, bridges and promiscuous
// NICs deliver multicast the filter did not ask for, the endpoint also
// checks each received multicast frame against the same set in software, so
// the handler sees exactly what the filter allows, as with a real NIC.
//
// Frames are read with recvmsg(2) on the raw fd (SyscallConn), with
// PACKET_AUXDATA enabled, because packet.Conn.ReadFrom drops control
// messages. The auxiliary data matters for checksum offload: a frame sent
// by a kernel on the same host through a virtual device (veth, bridge,
// macvlan, a container's interface; tx checksum offload is on by default
// there) reaches the socket in CHECKSUM_PARTIAL state, its UDP or TCP
// checksum field holding only the pseudo-header sum. The kernel reports
// such frames with TP_STATUS_CSUMNOTREADY, and the endpoint then computes
// the transport checksum (UDP, TCP, ICMPv6) into the frame before the
// handler sees it, so the stack's checksum verification passes. Frames with
// TP_STATUS_CSUM_VALID (verified by the receiving NIC or kernel) and frames
// without either flag carry their original, complete checksum and are
// passed on untouched. A GRO-merged frame (a NIC or veth with GRO on and
// a sender using UDP_SEGMENT) would be handed up as one large datagram;
// this backend does not split such frames.
//
// VLANs: the kernel removes the outer 802.1Q tag before AF_PACKET sees a
// frame (hardware or software VLAN stripping) and reports it only in the
// auxiliary data (TP_STATUS_VLAN_VALID, tp_vlan_tci). The endpoint ignores
// it, as it did before reading the auxiliary data: a frame tagged on the
// wire reaches the handler without its tag, like an untagged one. Run the
// stack on the VLAN's own interface (e.g. eth0.10) to use a VLAN.
package afpacket

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// DefaultFilterCapacity is the exact multicast table size used when
// Options.FilterCapacity is zero.
const DefaultFilterCapacity = 64

// Sentinel errors; Open and the methods wrap them with context.
var (
	// ErrNoSuchInterface: the named interface does not exist (in the
	// calling thread's network namespace).
	ErrNoSuchInterface = errors.New("afpacket: no such interface")
	// ErrInterfaceDown: the interface exists but is administratively down.
	ErrInterfaceDown = errors.New("afpacket: interface is down")
	// ErrPermission: the process lacks CAP_NET_RAW.
	ErrPermission = errors.New("afpacket: permission denied (needs CAP_NET_RAW)")
	// ErrNotEthernet: the interface has no 6-byte hardware address.
	ErrNotEthernet = errors.New("afpacket: not an Ethernet interface")
	// ErrNotMulticast: SetMulticastFilter got a non-multicast address.
	ErrNotMulticast = errors.New("afpacket: not a multicast MAC address")
	// ErrAttached: Attach was called twice.
	ErrAttached = errors.New("afpacket: already attached")
)

// Options configures an Endpoint.
type Options struct {
	// FilterCapacity is the number of exact multicast addresses programmed
	// before the endpoint switches the interface to all-multicast. Zero
	// means DefaultFilterCapacity; negative is an error.
	FilterCapacity int
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Endpoint is a link.Endpoint on one interface. Create it with Open.
type Endpoint struct {
	name     string
	ifindex  int
	mtu      int
	mac      wire.MAC
	capacity int
	log      *slog.Logger
	conn     *packet.Conn
	// rc is conn's raw fd, for recvmsg(2) and setsockopt(2).
	rc syscall.RawConn

	// filter is the software multicast filter the reader consults. Each
	// SetMulticastFilter stores a fresh ExactFilter that is never mutated
	// afterwards, so the receive path reads it without locking.
	filter atomic.Pointer[link.ExactFilter]
	// closed is set at the start of Close; WriteFrame and the reader check it.
	closed atomic.Bool

	// mu guards programmed, allMulti, attached and done. SetMulticastFilter
	// holds it across its setsockopt calls; the receive path never takes it.
	mu sync.Mutex
	// programmed holds the PACKET_MR_MULTICAST memberships currently on
	// the socket.
	programmed map[wire.MAC]struct{}
	// allMulti tells whether the PACKET_MR_ALLMULTI membership is on.
	allMulti bool
	attached bool
	// done is closed when the read goroutine exits (nil before Attach).
	done chan struct{}
	// stop is closed by Close to cut short the reader's error backoff.
	stop chan struct{}
}

var _ link.Endpoint = (*Endpoint)(nil)

// Open opens an endpoint on interface ifname in the calling thread's network
// namespace (use netns.NS.Do to open one inside a test namespace; the socket
// stays there). It fails with errors wrapping ErrNoSuchInterface,
// ErrInterfaceDown, ErrNotEthernet or ErrPermission.
func Open(ifname string, opts Options) (*Endpoint, error) {
	if opts.FilterCapacity < 0 {
		return nil, fmt.Errorf("afpacket: open %s: negative FilterCapacity %d", ifname, opts.FilterCapacity)
	}
	if opts.FilterCapacity == 0 {
		opts.FilterCapacity = DefaultFilterCapacity
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("afpacket: open %s: %w (%v)", ifname, ErrNoSuchInterface, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, fmt.Errorf("afpacket: open %s: %w", ifname, ErrInterfaceDown)
	}
	if len(ifi.HardwareAddr) != len(wire.MAC{}) {
		return nil, fmt.Errorf("afpacket: open %s: %w (hardware address %q)", ifname, ErrNotEthernet, ifi.HardwareAddr)
	}
	prog, err := receiveFilter()
	if err != nil {
		return nil, fmt.Errorf("afpacket: open %s: assemble BPF: %w", ifname, err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: prog})
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("afpacket: open %s: %w: %v", ifname, ErrPermission, err)
		}
		if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
			return nil, fmt.Errorf("afpacket: open %s: %w: %v", ifname, ErrNoSuchInterface, err)
		}
		return nil, fmt.Errorf("afpacket: open %s: %w", ifname, err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("afpacket: open %s: raw socket: %w", ifname, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
	}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("afpacket: open %s: raw socket: %w", ifname, err)
	}
	if serr != nil {
		conn.Close()
		return nil, fmt.Errorf("afpacket: open %s: setsockopt(PACKET_AUXDATA): %w", ifname, serr)
	}
	e := &Endpoint{
		name:       ifname,
		ifindex:    ifi.Index,
		mtu:        ifi.MTU,
		capacity:   opts.FilterCapacity,
		log:        log.With("link", "afpacket", "if", ifname),
		conn:       conn,
		rc:         rc,
		programmed: make(map[wire.MAC]struct{}),
		stop:       make(chan struct{}),
	}
	copy(e.mac[:], ifi.HardwareAddr)
	e.filter.Store(&link.ExactFilter{Capacity: e.capacity})
	return e, nil
}

// receiveFilter accepts frames whose packet type is host, broadcast or
// multicast, and drops outgoing (our own transmissions, looped back by
// AF_PACKET) and other-host frames.
func receiveFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OTHERHOST, SkipTrue: 1},
		bpf.RetConstant{Val: 0x40000},
		bpf.RetConstant{Val: 0},
	})
}

// Name returns the interface name.
func (e *Endpoint) Name() string { return e.name }

// MTU returns the interface MTU read at Open.
func (e *Endpoint) MTU() int { return e.mtu }

// HardwareAddr returns the interface's MAC address read at Open.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Attach starts the read goroutine that delivers frames to h.
func (e *Endpoint) Attach(h link.Handler) error {
	if h == nil {
		return fmt.Errorf("afpacket: %s: attach: nil handler", e.name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return fmt.Errorf("afpacket: %s: attach: %w", e.name, link.ErrClosed)
	}
	if e.attached {
		return fmt.Errorf("afpacket: %s: %w", e.name, ErrAttached)
	}
	e.attached = true
	e.done = make(chan struct{})
	go e.readLoop(h, e.done)
	return nil
}

// readBufSize covers any frame the kernel can hand an AF_PACKET socket,
// including GRO-merged ones larger than the MTU.
const readBufSize = 65536 + 64

func (e *Endpoint) readLoop(h link.Handler, done chan struct{}) {
	defer close(done)
	r := newReceiver(e.rc)
	batch := make([][]byte, 1)
	backoff := time.Duration(0)
	for {
		frame, aux, truncated, err := r.read()
		if err != nil {
			if e.closed.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			// E.g. ENETDOWN once when the interface goes down. Keep
			// reading, but do not spin on a persistent error.
			e.log.Warn("read failed", "err", fmt.Errorf("recvmsg: %w", err))
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			select {
			case <-e.stop:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		if len(frame) < 14 {
			continue
		}
		if !e.filter.Load().Accepts(wire.MAC(frame[:6])) {
			continue
		}
		if aux.status&unix.TP_STATUS_CSUMNOTREADY != 0 && !truncated {
			completeChecksum(frame)
		}
		if e.closed.Load() {
			return
		}
		batch[0] = frame
		h.HandleFrames(batch)
	}
}

// WriteFrame transmits one complete Ethernet frame. It is safe for
// concurrent use.
func (e *Endpoint) WriteFrame(frame []byte) error {
	if e.closed.Load() {
		return fmt.Errorf("afpacket: %s: write: %w", e.name, link.ErrClosed)
	}
	if len(frame) < 14 {
		return fmt.Errorf("afpacket: %s: write: frame of %d bytes is shorter than an Ethernet header", e.name, len(frame))
	}
	// For SOCK_RAW the kernel sends the frame as is; the address only
	// has to be well formed.
	_, err := e.conn.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[:6])})
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("afpacket: %s: write: %w", e.name, link.ErrClosed)
		}
		if errors.Is(err, unix.ENETDOWN) {
			return fmt.Errorf("afpacket: %s: write: %w: %v", e.name, ErrInterfaceDown, err)
		}
		return fmt.Errorf("afpacket: %s: write: %w", e.name, err)
	}
	return nil
}

// SetMulticastFilter programs the interface's multicast filter with exactly
// addrs (see the package comment). Beyond Options.FilterCapacity distinct
// addresses it adds a PACKET_MR_ALLMULTI membership and drops the exact ones;
// coming back under the capacity it adds the exact ones first and then drops
// all-multicast, so no wanted frame is missed during the change. On error
// the returned status describes what is programmed.
func (e *Endpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	want := make(map[wire.MAC]struct{}, len(addrs))
	for _, a := range addrs {
		if !a.IsMulticast() {
			return e.status(), fmt.Errorf("afpacket: %s: set filter: %w: %v", e.name, ErrNotMulticast, a)
		}
		want[a] = struct{}{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return e.statusLocked(), fmt.Errorf("afpacket: %s: set filter: %w", e.name, link.ErrClosed)
	}

	if len(want) > e.capacity {
		if !e.allMulti {
			if err := e.membership(unix.PACKET_ADD_MEMBERSHIP, unix.PACKET_MR_ALLMULTI, wire.MAC{}); err != nil {
				return e.statusLocked(), fmt.Errorf("afpacket: %s: enable all-multicast: %w", e.name, err)
			}
			e.allMulti = true
		}
		all := &link.ExactFilter{Capacity: e.capacity}
		all.Set(addrs) // more distinct addresses than capacity: accepts all
		e.filter.Store(all)
		var errs []error
		for m := range e.programmed {
			if err := e.membership(unix.PACKET_DROP_MEMBERSHIP, unix.PACKET_MR_MULTICAST, m); err != nil {
				errs = append(errs, fmt.Errorf("drop %v: %w", m, err))
				continue
			}
			delete(e.programmed, m)
		}
		e.log.Debug("multicast filter: all-multicast", "wanted", len(want), "capacity", e.capacity)
		if err := errors.Join(errs...); err != nil {
			return e.statusLocked(), fmt.Errorf("afpacket: %s: set filter: %w", e.name, err)
		}
		return e.statusLocked(), nil
	}

	for m := range want {
		if _, ok := e.programmed[m]; ok {
			continue
		}
		if err := e.membership(unix.PACKET_ADD_MEMBERSHIP, unix.PACKET_MR_MULTICAST, m); err != nil {
			return e.statusLocked(), fmt.Errorf("afpacket: %s: add %v: %w", e.name, m, err)
		}
		e.programmed[m] = struct{}{}
	}
	sw := &link.ExactFilter{Capacity: e.capacity}
	sw.Set(addrs)
	e.filter.Store(sw)
	var errs []error
	if e.allMulti {
		if err := e.membership(unix.PACKET_DROP_MEMBERSHIP, unix.PACKET_MR_ALLMULTI, wire.MAC{}); err != nil {
			errs = append(errs, fmt.Errorf("disable all-multicast: %w", err))
		} else {
			e.allMulti = false
		}
	}
	for m := range e.programmed {
		if _, ok := want[m]; ok {
			continue
		}
		if err := e.membership(unix.PACKET_DROP_MEMBERSHIP, unix.PACKET_MR_MULTICAST, m); err != nil {
			errs = append(errs, fmt.Errorf("drop %v: %w", m, err))
			continue
		}
		delete(e.programmed, m)
	}
	e.log.Debug("multicast filter: exact", "addresses", len(want))
	if err := errors.Join(errs...); err != nil {
		return e.statusLocked(), fmt.Errorf("afpacket: %s: set filter: %w", e.name, err)
	}
	return e.statusLocked(), nil
}

func (e *Endpoint) status() link.FilterStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statusLocked()
}

// statusLocked reports the programmed state; e.mu must be held.
func (e *Endpoint) statusLocked() link.FilterStatus {
	if e.allMulti {
		return link.FilterStatus{AllMulticast: true}
	}
	return link.FilterStatus{Exact: len(e.programmed)}
}

// membership adds or drops one packet_mreq on the socket.
func (e *Endpoint) membership(op, typ int, mac wire.MAC) error {
	mreq := unix.PacketMreq{Ifindex: int32(e.ifindex), Type: uint16(typ)}
	if typ == unix.PACKET_MR_MULTICAST {
		mreq.Alen = uint16(len(mac))
		copy(mreq.Address[:], mac[:])
	}
	rc, err := e.conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptPacketMreq(int(fd), unix.SOL_PACKET, op, &mreq)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt: %w", serr)
	}
	return nil
}

// Close stops the read goroutine, waits for it, and closes the socket; the
// kernel then drops all of the endpoint's multicast memberships. It must not
// be called from the handler. Closing twice returns an error wrapping
// link.ErrClosed.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return fmt.Errorf("afpacket: %s: close: %w", e.name, link.ErrClosed)
	}
	close(e.stop)
	err := e.conn.Close()
	e.mu.Lock()
	done := e.done
	e.programmed = map[wire.MAC]struct{}{}
	e.allMulti = false
	e.mu.Unlock()
	if done != nil {
		<-done
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.EBADF) {
		return fmt.Errorf("afpacket: %s: close: %w", e.name, err)
	}
	return nil
}

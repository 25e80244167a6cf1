//go:build linux

// Package afpacket is a link.Endpoint on a named Linux interface, through an
// AF_PACKET raw socket (SOCK_RAW, ETH_P_ALL) bound to it.
//
// # Receive modes
//
// By default (ModeAuto) the endpoint reads through a TPACKET_V3 receive
// ring (ModeRing): the kernel copies frames into blocks of memory shared
// with the process and hands a block over when it is full or when
// Options.RetireTimeout has passed since it was opened. The reader walks a
// block's frames in place and hands them to the handler in batches of up to
// link.MaxBatch, with no system call per frame and none at all while blocks
// keep arriving: it calls poll(2) only when the next block is not ready. If
// the kernel refuses the ring (no TPACKET_V3, or not enough memory for it),
// ModeAuto falls back to ModeRecvmsg: one recvmsg(2) per frame, frames
// gathered into a batch until the socket is empty. Endpoint.Mode tells
// which was chosen. The ring is the default because it needs a fraction of
// the system calls and CPU time per frame under load (on a veth flooded by
// trafgen: 3.6 times the frames per second at 1/7 of the CPU time per
// frame); its cost is the retire timeout, the longest a frame can wait in a
// partly filled block at low rates. The default, 1 ms (the smallest the
// kernel takes), adds about 0.85 ms at 200 frames/s, where recvmsg takes
// 10 µs; a 4 ms timeout would add 2.7 ms. Programs that need microsecond
// latency at low rates should choose ModeRecvmsg. BenchmarkReceiveModes
// and BenchmarkRetireLatency measure both (README.md has the figures).
//
// Both modes give the handler the same frames. The ring's frame headers
// carry the status PACKET_AUXDATA gives the recvmsg path:
//
//   - Checksum offload: a frame sent by a kernel on the same host through a
//     virtual device (veth, bridge, macvlan, a container's interface; tx
//     checksum offload is on by default there) reaches the socket in
//     CHECKSUM_PARTIAL state, its UDP or TCP checksum field holding only the
//     pseudo-header sum. The kernel reports such frames with
//     TP_STATUS_CSUMNOTREADY, and the endpoint then computes the transport
//     checksum (UDP, TCP, ICMPv6) into the frame before the handler sees
//     it, and marks it link.FrameChecksumValid. Frames with
//     TP_STATUS_CSUM_VALID (the NIC's receive checksum offload, or the
//     kernel's own check in GRO, verified the transport checksum) are
//     passed on untouched and marked link.FrameChecksumValid: the stack
//     then skips its UDP checksum check, as the kernel's UDP does. Frames
//     with neither flag are passed on untouched and unmarked (the stack
//     verifies them).
//   - VLANs: the kernel removes the outer 802.1Q tag before AF_PACKET sees
//     a frame and reports it only in the status (TP_STATUS_VLAN_VALID,
//     tp_vlan_tci). The endpoint ignores it: a frame tagged on the wire
//     reaches the handler without its tag, like an untagged one. Run the
//     stack on the VLAN's own interface (e.g. eth0.10) to use a VLAN.
//   - A GRO-merged frame (a NIC or veth with GRO on and a sender using
//     UDP_SEGMENT) is handed up as one large frame; neither mode splits it.
//     Frames larger than a ring block (or 64 KiB on the recvmsg path) are
//     truncated and passed on without checksum completion.
//
// A BPF filter attached before bind(2) drops the endpoint's own
// transmitted frames (PACKET_OUTGOING) and frames for other hosts
// (PACKET_OTHERHOST, seen when the interface is promiscuous, e.g. a bridge
// port) in the kernel, with no window before it applies.
//
// # Multicast filter
//
// SetMulticastFilter programs the interface's real receive filter (visible
// in `ip maddr show dev IF` as `link 01:00:5e:...`): exact
// PACKET_MR_MULTICAST memberships (packet.Conn.JoinGroup) up to
// Options.FilterCapacity, and a PACKET_MR_ALLMULTI membership beyond that.
// The kernel drops every membership when the socket closes. Because veth,
// bridges and promiscuous NICs deliver multicast the filter did not ask
// for, the endpoint also checks each received multicast frame against the
// same set in software, so the handler sees exactly what the filter
// allows, as with a real NIC.
//
// # Link state, writes, Close
//
// The endpoint watches its interface over rtnetlink (in the interface's
// namespace) and reports its state to the handler right after Attach and
// on every change: up means administratively up with carrier (IFF_UP and
// IFF_RUNNING). When the interface is deleted (or moved to another
// namespace, or its veth peer's namespace is destroyed) it reports Gone,
// stops reading, and WriteFrame fails with an error wrapping link.ErrGone.
// WriteFrame never blocks for long: when the socket's send buffer or the
// device queue stays full for Options.WriteTimeout it fails with an error
// wrapping link.ErrWouldBlock (counted in Stats). Close wakes a reader
// parked in poll(2) at once, waits for it, and closes the socket.
package afpacket

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/internal/tpacket"
	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/link/internal/core"
	"github.com/mcstack/mcstack/wire"
)

// Defaults applied to zero fields of Options.
const (
	// DefaultFilterCapacity is the exact multicast table size.
	DefaultFilterCapacity = core.DefaultFilterCapacity
	// DefaultWriteTimeout is how long WriteFrame waits for room in a
	// full transmit queue.
	DefaultWriteTimeout = core.DefaultWriteTimeout
	// DefaultReceiveBuffer (8 MiB, as the ring's size) is the recvmsg
	// path's socket receive buffer.
	DefaultReceiveBuffer = 8 << 20
	// DefaultBlockSize (256 KiB), DefaultBlockCount (32: an 8 MiB ring),
	// DefaultFrameSize (2048) and DefaultRetireTimeout (1 ms) are the
	// ring geometry; see Options.
	DefaultBlockSize     = tpacket.DefaultBlockSize
	DefaultBlockCount    = tpacket.DefaultBlockCount
	DefaultFrameSize     = tpacket.DefaultFrameSize
	DefaultRetireTimeout = tpacket.DefaultRetireTimeout
)

// Mode selects how the endpoint receives frames.
type Mode int

const (
	// ModeAuto (the zero value) uses the ring when the kernel supports
	// it and recvmsg otherwise.
	ModeAuto Mode = iota
	// ModeRing reads a TPACKET_V3 receive ring; Open fails if the kernel
	// refuses it.
	ModeRing
	// ModeRecvmsg reads one frame per recvmsg(2) call.
	ModeRecvmsg
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeRing:
		return "ring"
	case ModeRecvmsg:
		return "recvmsg"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Sentinel errors; Open and the methods wrap them with context (Open's as
// "afpacket: open IFACE: no such interface", so their own text has no
// package prefix).
var (
	// ErrNoSuchInterface: the named interface does not exist (in the
	// calling thread's network namespace).
	ErrNoSuchInterface = errors.New("no such interface")
	// ErrInterfaceDown: the link is down (the same value as
	// link.ErrLinkDown), as WriteFrame reports it. Open accepts an
	// interface that is down: the endpoint reports its state after
	// Attach and receives once it comes up.
	ErrInterfaceDown = link.ErrLinkDown
	// ErrPermission: the process lacks CAP_NET_RAW.
	ErrPermission = errors.New("permission denied (needs CAP_NET_RAW)")
	// ErrNotEthernet: the interface has no 6-byte hardware address.
	ErrNotEthernet = errors.New("not an Ethernet interface")
	// ErrNotMulticast: SetMulticastFilter got a non-multicast address.
	ErrNotMulticast = errors.New("afpacket: not a multicast MAC address")
	// ErrAttached: Attach was called twice.
	ErrAttached = errors.New("afpacket: already attached")
	// ErrRing: ModeRing was asked for and the kernel refused the ring.
	ErrRing = errors.New("TPACKET_V3 ring unavailable")
)

// Options configures an Endpoint. The zero value is the default.
type Options struct {
	// Mode selects the receive path; the zero value is ModeAuto.
	Mode Mode
	// BlockSize is the ring's block size in bytes, a multiple of the page
	// size; it is also the largest frame received whole. Zero means
	// DefaultBlockSize.
	BlockSize int
	// BlockCount is the number of blocks in the ring. Zero means
	// DefaultBlockCount.
	BlockCount int
	// FrameSize is the ring's tp_frame_size (a multiple of 16 dividing
	// BlockSize); with TPACKET_V3 it does not limit frame sizes. Zero
	// means DefaultFrameSize.
	FrameSize int
	// RetireTimeout is how long the kernel keeps a partly filled block
	// before handing it over (tp_retire_blk_tov, whole milliseconds):
	// the most latency the ring adds at low rates. Zero means
	// DefaultRetireTimeout.
	RetireTimeout time.Duration
	// FilterCapacity is the number of exact multicast addresses programmed
	// before the endpoint switches the interface to all-multicast. Zero
	// means DefaultFilterCapacity; negative is an error.
	FilterCapacity int
	// WriteTimeout bounds how long WriteFrame waits for room in a full
	// transmit queue before failing with link.ErrWouldBlock. Zero means
	// DefaultWriteTimeout; negative is an error.
	WriteTimeout time.Duration
	// SendBuffer sets the socket's SO_SNDBUF in bytes (the kernel doubles
	// it and applies its minimum); zero keeps the kernel's default.
	SendBuffer int
	// ReceiveBuffer sets the socket's receive buffer in bytes for the
	// recvmsg path (ModeRecvmsg, or ModeAuto falling back to it); the ring
	// does not use it. Zero means DefaultReceiveBuffer. As root (or with
	// CAP_NET_ADMIN) it may exceed net.core.rmem_max (SO_RCVBUFFORCE);
	// otherwise the kernel caps it there. Negative is an error.
	ReceiveBuffer int
	// Logger receives diagnostics; nil means discard.
	Logger *slog.Logger
}

// Endpoint is a link.Endpoint on one interface. Create it with Open.
type Endpoint struct {
	name    string
	ifindex int
	mtu     int
	mac     wire.MAC
	mode    Mode
	core    *core.Core
}

var (
	_ link.Endpoint = (*Endpoint)(nil)
	_ link.Indexed  = (*Endpoint)(nil)
)

// Open opens an endpoint on interface ifname in the calling thread's network
// namespace (use netns.NS.Do to open one inside a test namespace; the socket
// stays there). It fails with errors wrapping ErrNoSuchInterface,
// ErrNotEthernet, ErrPermission or (ModeRing) ErrRing. The interface may be
// down: the first state the handler gets after Attach says so.
func Open(ifname string, opts Options) (*Endpoint, error) {
	fail := func(format string, args ...any) (*Endpoint, error) {
		return nil, fmt.Errorf("afpacket: open %s: "+format, append([]any{ifname}, args...)...)
	}
	switch {
	case opts.FilterCapacity < 0:
		return fail("negative FilterCapacity %d", opts.FilterCapacity)
	case opts.WriteTimeout < 0:
		return fail("negative WriteTimeout %v", opts.WriteTimeout)
	case opts.SendBuffer < 0:
		return fail("negative SendBuffer %d", opts.SendBuffer)
	case opts.ReceiveBuffer < 0:
		return fail("negative ReceiveBuffer %d", opts.ReceiveBuffer)
	case opts.Mode < ModeAuto || opts.Mode > ModeRecvmsg:
		return fail("unknown %v", opts.Mode)
	}
	ringCfg, err := tpacket.Config{
		BlockSize:     opts.BlockSize,
		BlockCount:    opts.BlockCount,
		FrameSize:     opts.FrameSize,
		RetireTimeout: opts.RetireTimeout,
	}.WithDefaults()
	if err != nil && opts.Mode != ModeRecvmsg {
		return fail("%w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fail("%w", ErrNoSuchInterface)
	}
	if len(ifi.HardwareAddr) != len(wire.MAC{}) {
		return fail("%w (hardware address %q)", ErrNotEthernet, ifi.HardwareAddr)
	}
	prog, err := receiveFilter()
	if err != nil {
		return fail("assemble BPF: %w", err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: prog})
	if err != nil {
		switch {
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return fail("%w: %v", ErrPermission, err)
		case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return fail("%w: %v", ErrNoSuchInterface, err)
		}
		return fail("%w", err)
	}
	s, mode, err := newSocket(conn, ifi.Index, opts, ringCfg, log.With("interface", ifname))
	if err != nil {
		conn.Close()
		return fail("%w", err)
	}
	c, err := core.New(core.Config{
		Backend:         "afpacket",
		Name:            ifname,
		Index:           ifi.Index,
		Conn:            s.rc,
		FilterCapacity:  opts.FilterCapacity,
		WriteTimeout:    opts.WriteTimeout,
		Logger:          log,
		ErrAttached:     ErrAttached,
		ErrNotMulticast: ErrNotMulticast,
	}, s)
	if err != nil {
		s.Close()
		return nil, err
	}
	e := &Endpoint{name: ifname, ifindex: ifi.Index, mtu: ifi.MTU, mode: mode, core: c}
	copy(e.mac[:], ifi.HardwareAddr)
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

// Index returns the interface's kernel ifindex.
func (e *Endpoint) Index() int { return e.ifindex }

// MTU returns the interface MTU read at Open.
func (e *Endpoint) MTU() int { return e.mtu }

// HardwareAddr returns the interface's MAC address read at Open.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Mode returns the receive mode in use: ModeRing or ModeRecvmsg.
func (e *Endpoint) Mode() Mode { return e.mode }

// Attach starts the reader that delivers frames and link-state changes to
// h; the first call h receives is the link's state. A second call fails
// with ErrAttached.
func (e *Endpoint) Attach(h link.Handler) error { return e.core.Attach(h) }

// WriteFrame transmits one complete Ethernet frame. It is safe for
// concurrent use. A full queue makes it wait up to Options.WriteTimeout
// and then fail with an error wrapping link.ErrWouldBlock; a down link
// fails with link.ErrLinkDown, a deleted one with link.ErrGone.
func (e *Endpoint) WriteFrame(frame []byte) error { return e.core.WriteFrame(frame) }

// SetMulticastFilter programs the interface's multicast filter with exactly
// addrs (see the package comment). Beyond Options.FilterCapacity distinct
// addresses it adds a PACKET_MR_ALLMULTI membership and drops the exact ones;
// coming back under the capacity it adds the exact ones first and then drops
// all-multicast, so no wanted frame is missed during the change. On error
// the returned status describes what is programmed.
func (e *Endpoint) SetMulticastFilter(addrs []wire.MAC) (link.FilterStatus, error) {
	return e.core.SetMulticastFilter(addrs)
}

// Stats returns the endpoint's counters, including the frames the kernel
// dropped because the ring or the socket queue was full.
func (e *Endpoint) Stats() link.Stats { return e.core.Stats() }

// Close stops the reader, waits for it, and closes the socket; the kernel
// then drops all of the endpoint's multicast memberships. It must not be
// called from the handler. Closing twice returns an error wrapping
// link.ErrClosed.
func (e *Endpoint) Close() error { return e.core.Close() }

// socket is the endpoint's I/O: the core.Backend of both modes.
type socket struct {
	core.Reader
	conn    *packet.Conn
	rc      syscall.RawConn
	ifindex int
	ring    *tpacket.Ring // nil in ModeRecvmsg
	// programmed and allMulti are the memberships on the socket. Only
	// ProgramFilter touches them, and the core serializes its calls.
	programmed map[wire.MAC]struct{}
	allMulti   bool
}

// newSocket sets up the receive path of mode on conn.
func newSocket(conn *packet.Conn, ifindex int, opts Options, ringCfg tpacket.Config, log *slog.Logger) (*socket, Mode, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, 0, fmt.Errorf("raw socket: %w", err)
	}
	s := &socket{conn: conn, rc: rc, ifindex: ifindex, programmed: make(map[wire.MAC]struct{})}
	if opts.SendBuffer > 0 {
		if err := s.control(func(fd int) error {
			return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, opts.SendBuffer)
		}); err != nil {
			return nil, 0, fmt.Errorf("setsockopt(SO_SNDBUF): %w", err)
		}
	}
	mode := opts.Mode
	if mode != ModeRecvmsg {
		var ring *tpacket.Ring
		err := s.control(func(fd int) error {
			var err error
			ring, err = tpacket.Setup(fd, ringCfg)
			if err != nil {
				// Back to the default version for the recvmsg path.
				_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V1)
				return err
			}
			drainQueue(fd)
			return nil
		})
		switch {
		case err == nil:
			s.ring = ring
			s.Reader = newRingReader(ring, rc)
			return s, ModeRing, nil
		case mode == ModeRing:
			return nil, 0, fmt.Errorf("%w: %w", ErrRing, err)
		}
		log.Info("TPACKET_V3 ring unavailable, reading with recvmsg", "err", err)
	}
	if err := s.control(func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1)
	}); err != nil {
		return nil, 0, fmt.Errorf("setsockopt(PACKET_AUXDATA): %w", err)
	}
	// The kernel's default receive buffer (~208 KiB) holds under a
	// millisecond of a fast stream of small frames: a larger one rides out
	// the reader being descheduled. It cannot help a sustained overload:
	// at one recvmsg per frame this path is CPU-bound near 160k frames/s
	// on the benchmark machine (bench/reallink), where the ring is not.
	rcvbuf := opts.ReceiveBuffer
	if rcvbuf == 0 {
		rcvbuf = DefaultReceiveBuffer
	}
	if err := s.control(func(fd int) error {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) == nil {
			return nil
		}
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}); err != nil {
		return nil, 0, fmt.Errorf("setsockopt(SO_RCVBUF): %w", err)
	}
	s.Reader = core.NewFrameBatcher(newReceiver(rc), readBufSize)
	return s, ModeRecvmsg, nil
}

// drainQueue discards the frames the socket queued between bind(2) and
// the ring's setup: with a ring they would never be read.
func drainQueue(fd int) {
	var buf [64]byte
	for range 1 << 16 {
		if _, _, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil {
			return
		}
	}
}

// control runs f on the socket's descriptor.
func (s *socket) control(f func(fd int) error) error {
	var ferr error
	if err := s.rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Write sends one frame with a non-blocking send(2) on the bound socket.
func (s *socket) Write(frame []byte) error {
	return s.control(func(fd int) error {
		_, err := unix.Write(fd, frame)
		return err
	})
}

// KernelDrops reads and resets the socket's PACKET_STATISTICS drop count.
func (s *socket) KernelDrops() uint64 {
	var drops uint64
	_ = s.control(func(fd int) error {
		_, d, _, err := tpacket.Stats(fd)
		drops = d
		return err
	})
	return drops
}

// Close closes the socket and unmaps the ring.
func (s *socket) Close() error {
	err := s.conn.Close()
	if s.ring != nil {
		err = errors.Join(err, s.ring.Close())
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.EBADF) {
		return err
	}
	return nil
}

// ProgramFilter implements core.HardwareFilter with PACKET_ADD_MEMBERSHIP
// and PACKET_DROP_MEMBERSHIP.
func (s *socket) ProgramFilter(want []wire.MAC, st link.FilterStatus, publish func()) (link.FilterStatus, error) {
	if st.AllMulticast {
		if !s.allMulti {
			if err := s.allMulticast(true); err != nil {
				return s.status(), fmt.Errorf("enable all-multicast: %w", err)
			}
			s.allMulti = true
		}
		publish()
		var errs []error
		for m := range s.programmed {
			if err := s.conn.LeaveGroup(m[:]); err != nil {
				errs = append(errs, fmt.Errorf("drop %v: %w", m, err))
				continue
			}
			delete(s.programmed, m)
		}
		return s.status(), errors.Join(errs...)
	}
	wanted := make(map[wire.MAC]struct{}, len(want))
	for _, m := range want {
		wanted[m] = struct{}{}
		if _, ok := s.programmed[m]; ok {
			continue
		}
		if err := s.conn.JoinGroup(m[:]); err != nil {
			return s.status(), fmt.Errorf("add %v: %w", m, err)
		}
		s.programmed[m] = struct{}{}
	}
	publish()
	var errs []error
	if s.allMulti {
		if err := s.allMulticast(false); err != nil {
			errs = append(errs, fmt.Errorf("disable all-multicast: %w", err))
		} else {
			s.allMulti = false
		}
	}
	for m := range s.programmed {
		if _, ok := wanted[m]; ok {
			continue
		}
		if err := s.conn.LeaveGroup(m[:]); err != nil {
			errs = append(errs, fmt.Errorf("drop %v: %w", m, err))
			continue
		}
		delete(s.programmed, m)
	}
	return s.status(), errors.Join(errs...)
}

// status reports the programmed memberships.
func (s *socket) status() link.FilterStatus {
	if s.allMulti {
		return link.FilterStatus{AllMulticast: true}
	}
	return link.FilterStatus{Exact: len(s.programmed)}
}

// allMulticast adds or drops the socket's PACKET_MR_ALLMULTI membership
// (package packet has calls for exact groups and promiscuous mode only).
func (s *socket) allMulticast(on bool) error {
	op := unix.PACKET_DROP_MEMBERSHIP
	if on {
		op = unix.PACKET_ADD_MEMBERSHIP
	}
	mreq := unix.PacketMreq{Ifindex: int32(s.ifindex), Type: unix.PACKET_MR_ALLMULTI}
	return s.control(func(fd int) error {
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, op, &mreq); err != nil {
			return fmt.Errorf("setsockopt: %w", err)
		}
		return nil
	})
}

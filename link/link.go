// Package link defines what the stack needs from a network interface: a way
// to send and receive Ethernet frames and a multicast filter the stack
// programs. Backends live in subpackages: memlan (an in-memory LAN for tests
// and the demo), and on Linux afpacket (an existing interface, through a
// TPACKET_V3 ring or recvmsg), tap (a TAP device) and tun (a TUN device,
// presented as an Ethernet link).
//
// # The contract
//
// An endpoint delivers received frames to its Handler in batches, from one
// goroutine at a time, in arrival order; a batch holds at most MaxBatch
// frames, which are valid only during the call. It reports the link's
// state through the same Handler: the kernel backends once right after
// Attach and then on every change of carrier or administrative state, and
// Gone (final) when the interface disappears; after Gone nothing more is
// delivered and writes fail with an error wrapping ErrGone. WriteFrame
// never blocks for long: when the transmit queue stays full it returns an
// error wrapping ErrWouldBlock after a short bounded wait. Backends wrap
// the sentinel errors below with their context; test them with errors.Is.
//
// The kernel backends share one mechanism (the reader goroutine, the
// software multicast filter behind an atomic pointer, link-state
// monitoring over rtnetlink, bounded writes, Close that wakes a parked
// reader) and differ only in their I/O; they count what they do in Stats.
// A nil *slog.Logger in any backend's options means discard; log records
// carry the attribute "interface" (and "err" for errors).
package link

import (
	"errors"

	"github.com/mcstack/mcstack/wire"
)

// Handler is what an endpoint delivers to: the stack's side of the link.
// An endpoint calls it from one goroutine at a time (never concurrently),
// and never after its Close returns.
type Handler interface {
	// HandleFrames handles a batch of received Ethernet frames, in arrival
	// order: everything the endpoint read in one go (a ring block, one
	// recvmmsg, the frames queued in memory). The frames and the slices are
	// valid only during the call; a handler that keeps bytes must copy
	// them. The batch is never empty. The stack wakes each socket that got
	// datagrams once per batch, not once per datagram.
	//
	// flags is nil when the endpoint knows nothing about the frames beyond
	// their bytes; otherwise flags[i] describes frames[i].
	HandleFrames(frames [][]byte, flags []FrameFlags)
	// HandleLinkState reports a change of the link's state: carrier lost
	// or regained, or the interface gone. An endpoint that can observe the
	// state reports it once right after Attach (Up or not) and then on
	// every change; one that cannot (an in-memory link) may never call it,
	// and the link is then taken to be up.
	HandleLinkState(st LinkState)
}

// FrameFlags is what an endpoint learned about a received frame besides
// its bytes, from the kernel or the NIC.
type FrameFlags uint8

const (
	// FrameChecksumValid: the frame's transport checksum (the UDP, ICMPv6
	// or other layer-4 checksum of an IP packet that is not a tunnel) was
	// verified before the frame reached the endpoint (the NIC's receive
	// checksum offload, or the kernel's own check, e.g. in GRO), or the
	// frame was sent by this host and its checksum completed by the
	// endpoint. Linux's AF_PACKET reports it as TP_STATUS_CSUM_VALID (an
	// skb marked CHECKSUM_UNNECESSARY) or TP_STATUS_CSUMNOTREADY (a local
	// sender's CHECKSUM_PARTIAL). The stack then skips its own UDP checksum
	// check, as the kernel's UDP does; it still checks the IPv4 header
	// checksum and every length.
	FrameChecksumValid FrameFlags = 1 << iota
)

// LinkState is the state of the link under an endpoint.
type LinkState struct {
	// Up is set when the link can carry frames: administratively up with
	// carrier (IFF_UP and IFF_RUNNING / operstate up, for a kernel
	// interface).
	Up bool
	// Gone is set when the interface disappeared (deleted, its namespace
	// destroyed, a TAP device removed). It is final: the endpoint delivers
	// nothing more and its writes fail.
	Gone bool
	// Err is the error that revealed the change, when there was one (e.g.
	// ENETDOWN or ENXIO from a read); nil otherwise.
	Err error
}

func (st LinkState) String() string {
	switch {
	case st.Gone && st.Err != nil:
		return "gone (" + st.Err.Error() + ")"
	case st.Gone:
		return "gone"
	case st.Up:
		return "up"
	case st.Err != nil:
		return "down (" + st.Err.Error() + ")"
	}
	return "down"
}

// MaxBatch is the largest number of frames the endpoints of this module
// hand to Handler.HandleFrames in one call.
const MaxBatch = 128

// FrameFunc is a Handler that calls f for each frame of a batch and
// ignores link-state changes. Tests and simple consumers use it.
type FrameFunc func(frame []byte)

// HandleFrames calls f for each frame.
func (f FrameFunc) HandleFrames(frames [][]byte, _ []FrameFlags) {
	for _, fr := range frames {
		f(fr)
	}
}

// HandleLinkState does nothing.
func (FrameFunc) HandleLinkState(LinkState) {}

// Stats counts what a kernel endpoint (afpacket, tap, tun) did. Every
// frame read from the kernel ends up in exactly one of RxFrames,
// RxFiltered and RxInvalid; every WriteFrame call that got past the
// argument checks in exactly one of TxFrames, TxWouldBlock and TxErrors.
type Stats struct {
	// RxFrames counts frames handed to the handler, in RxBatches calls.
	RxFrames  uint64
	RxBatches uint64
	// RxFiltered counts multicast frames the software filter dropped
	// (addresses not in the filter the stack programmed).
	RxFiltered uint64
	// RxInvalid counts frames dropped as unusable: shorter than an
	// Ethernet header or, on a TUN device, not an IPv4 or IPv6 packet.
	RxInvalid uint64
	// RxErrors counts failed reads (each is logged).
	RxErrors uint64
	// RxKernelDrops counts frames the kernel dropped because the
	// endpoint's ring or socket queue was full, where it reports them
	// (afpacket).
	RxKernelDrops uint64
	// TxFrames counts frames transmitted; TxWaits how many of them found
	// the transmit queue full at first and went out within the bounded
	// wait.
	TxFrames uint64
	TxWaits  uint64
	// TxWouldBlock counts frames not sent because the transmit queue
	// stayed full for the whole bounded wait (ErrWouldBlock).
	TxWouldBlock uint64
	// TxErrors counts frames not sent for any other reason.
	TxErrors uint64
}

// Indexed is implemented by endpoints on a kernel interface. Index returns
// the kernel's interface index (ifindex); the stack uses it as the
// Interface's index, so that a received datagram's ControlMessage.IfIndex
// can be passed to net.InterfaceByIndex.
type Indexed interface {
	Index() int
}

// Endpoint is a network interface as the stack sees it.
type Endpoint interface {
	// Name identifies the endpoint in logs and errors.
	Name() string
	// MTU is the largest IP packet the link carries (Ethernet payload).
	MTU() int
	// HardwareAddr is the endpoint's unicast MAC address.
	HardwareAddr() wire.MAC
	// Attach starts delivery of received frames to h. It is called once,
	// before any other method but Name, MTU and HardwareAddr.
	Attach(h Handler) error
	// WriteFrame transmits one complete Ethernet frame. It is safe for
	// concurrent use and does not keep frame after it returns. It never
	// blocks for long: when the transmit queue stays full it gives up
	// after a bounded wait and returns an error wrapping ErrWouldBlock
	// (the caller counts it and may retry later).
	WriteFrame(frame []byte) error
	// SetMulticastFilter replaces the receive multicast filter with exactly
	// addrs (a whole desired set, never a delta: drivers rebuild their
	// table anyway). It may block for as long as the hardware needs; the
	// stack calls it only from its per-interface filter worker and never
	// concurrently for one endpoint. A filter too large for the hardware's
	// exact table falls back to receiving all multicast, reported in the
	// status.
	SetMulticastFilter(addrs []wire.MAC) (FilterStatus, error)
	// Close stops delivery and releases the endpoint. The handler is not
	// called after Close returns.
	Close() error
}

// FilterStatus tells how the endpoint programmed its multicast filter.
type FilterStatus struct {
	// AllMulticast is set when the exact table was too small and the
	// endpoint now accepts every multicast frame.
	AllMulticast bool
	// Exact is the number of addresses held in the exact table.
	Exact int
}

// Sentinel errors of every endpoint; backends wrap them with context.
var (
	// ErrClosed is returned by operations on a closed endpoint.
	ErrClosed = errors.New("link: endpoint closed")
	// ErrWouldBlock: WriteFrame found the transmit queue full for longer
	// than its bounded wait; the frame was not sent.
	ErrWouldBlock = errors.New("link: transmit queue full")
	// ErrGone: the interface under the endpoint disappeared.
	ErrGone = errors.New("link: interface gone")
	// ErrLinkDown: the link is down (no carrier or administratively down).
	ErrLinkDown = errors.New("link: link down")
)

// ExactFilter models a NIC's bounded multicast filter: up to Capacity exact
// addresses, beyond that all multicast. The zero value accepts nothing;
// it is not safe for concurrent use (backends guard it).
type ExactFilter struct {
	Capacity int
	// The addresses: in few when there are at most fewAddrs of them (a
	// linear scan beats hashing), else in addrs.
	few   []wire.MAC
	addrs map[wire.MAC]struct{}
	all   bool
}

// fewAddrs is the number of addresses up to which ExactFilter scans a
// slice instead of looking up a map.
const fewAddrs = 8

// Set replaces the filter contents and returns the resulting status.
func (f *ExactFilter) Set(addrs []wire.MAC) FilterStatus {
	set := make(map[wire.MAC]struct{}, len(addrs))
	for _, a := range addrs {
		set[a] = struct{}{}
	}
	f.few, f.addrs = nil, nil
	f.all = len(set) > f.Capacity
	switch {
	case f.all:
		return FilterStatus{AllMulticast: true}
	case len(set) <= fewAddrs:
		f.few = make([]wire.MAC, 0, len(set))
		for a := range set {
			f.few = append(f.few, a)
		}
	default:
		f.addrs = set
	}
	return FilterStatus{Exact: len(set)}
}

// Status returns what the filter holds, as Set reported it.
func (f *ExactFilter) Status() FilterStatus {
	if f.all {
		return FilterStatus{AllMulticast: true}
	}
	return FilterStatus{Exact: len(f.few) + len(f.addrs)}
}

// Accepts reports whether a frame to dst passes the filter. Unicast and
// broadcast frames are not the multicast filter's business and pass.
func (f *ExactFilter) Accepts(dst wire.MAC) bool {
	if !dst.IsMulticast() || dst == wire.BroadcastMAC || f.all {
		return true
	}
	if f.addrs == nil {
		for _, a := range f.few {
			if a == dst {
				return true
			}
		}
		return false
	}
	_, ok := f.addrs[dst]
	return ok
}

// Package link defines what the stack needs from a network interface: a way
// to send and receive Ethernet frames and a multicast filter the stack
// programs. Backends live in subpackages: memlan (an in-memory LAN for tests
// and the demo), afpacket and tap (Linux).
package link

import (
	"errors"

	"github.com/mcstack/mcstack/wire"
)

// Handler receives one Ethernet frame. The frame is only valid during the
// call; a handler that keeps bytes must copy them. An endpoint calls its
// handler from a single goroutine, so calls are never concurrent.
type Handler func(frame []byte)

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
	// concurrent use and does not keep frame after it returns.
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

// ErrClosed is returned by operations on a closed endpoint.
var ErrClosed = errors.New("link: endpoint closed")

// ExactFilter models a NIC's bounded multicast filter: up to Capacity exact
// addresses, beyond that all multicast. The zero value accepts nothing;
// it is not safe for concurrent use (backends guard it).
type ExactFilter struct {
	Capacity int
	addrs    map[wire.MAC]struct{}
	all      bool
}

// Set replaces the filter contents and returns the resulting status.
func (f *ExactFilter) Set(addrs []wire.MAC) FilterStatus {
	f.addrs = make(map[wire.MAC]struct{}, len(addrs))
	for _, a := range addrs {
		f.addrs[a] = struct{}{}
	}
	f.all = len(f.addrs) > f.Capacity
	if f.all {
		f.addrs = nil
		return FilterStatus{AllMulticast: true}
	}
	return FilterStatus{Exact: len(f.addrs)}
}

// Accepts reports whether a frame to dst passes the filter. Unicast and
// broadcast frames are not the multicast filter's business and pass.
func (f *ExactFilter) Accepts(dst wire.MAC) bool {
	if !dst.IsMulticast() || dst == wire.BroadcastMAC || f.all {
		return true
	}
	_, ok := f.addrs[dst]
	return ok
}

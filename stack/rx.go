package stack

import (
	"net/netip"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

// The receive path. Everything in this file runs on the endpoint's
// delivery goroutine for every frame, so it takes no mutex: it reads the
// immutable snapshots described in the package documentation, counts with
// atomics and queues with non-blocking channel sends.

// linkHandler is the link.Handler the stack attaches to an interface's
// endpoint (a separate type, so that Interface does not export the
// handler's methods).
type linkHandler struct{ ifc *Interface }

// HandleFrames implements link.Handler.
func (h linkHandler) HandleFrames(frames [][]byte) {
	for _, f := range frames {
		h.ifc.handleFrame(f)
	}
}

// HandleLinkState implements link.Handler.
func (h linkHandler) HandleLinkState(st link.LinkState) {
	h.ifc.log.Info("link state changed", "state", st.String())
}

// handleFrame handles one received frame.
func (ifc *Interface) handleFrame(frame []byte) {
	if ifc.removed.Load() {
		return
	}
	ifc.counters.inc(cFramesReceived)
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		ifc.counters.inc(cBadLink)
		return
	}
	if !eth.Dst.IsMulticast() && eth.Dst != ifc.mac {
		ifc.counters.inc(cNotForUs)
		return
	}
	switch eth.EtherType {
	case wire.EtherTypeIPv4:
		ifc.receiveIPv4(eth.Payload)
	case wire.EtherTypeIPv6:
		ifc.receiveIPv6(eth.Payload)
	default:
		ifc.counters.inc(cNotIP)
	}
}

func (ifc *Interface) receiveIPv4(b []byte) {
	ip, err := wire.ParseIPv4(b)
	if err != nil {
		ifc.counters.inc(cBadIP)
		return
	}
	if ip.MoreFragments || ip.FragmentOffset != 0 {
		ifc.counters.inc(cFragments)
		return
	}
	switch ip.Protocol {
	case wire.ProtoIGMP:
		ifc.proto.receive(ip.Src, ip.Dst, ip.TTL, ip.RouterAlert, ip.Payload)
	case wire.ProtoUDP:
		u, err := wire.ParseUDP(ip.Payload, ip.Src, ip.Dst)
		if err != nil {
			ifc.counters.inc(cBadUDP)
			return
		}
		ifc.deliver(ip.Src, u.SrcPort, ip.Dst, u.DstPort, ip.TTL, u.Payload)
	}
}

// mldTypes are the ICMPv6 types handed to the MLD engine (RFC 2710 §3,
// RFC 9777 §5).
func isMLDType(t byte) bool { return t == 130 || t == 131 || t == 132 || t == 143 }

func (ifc *Interface) receiveIPv6(b []byte) {
	ip, err := wire.ParseIPv6(b)
	if err != nil {
		ifc.counters.inc(cBadIP)
		return
	}
	if ip.Fragment {
		ifc.counters.inc(cFragments)
		return
	}
	switch ip.NextHeader {
	case wire.ProtoICMPv6:
		if len(ip.Payload) == 0 || !isMLDType(ip.Payload[0]) {
			return
		}
		if wire.VerifyICMPv6(ip.Src, ip.Dst, ip.Payload) != nil {
			ifc.counters.inc(cBadICMPv6)
			return
		}
		ifc.proto.receive(ip.Src, ip.Dst, ip.HopLimit, ip.RouterAlert, ip.Payload)
	case wire.ProtoUDP:
		u, err := wire.ParseUDP(ip.Payload, ip.Src, ip.Dst)
		if err != nil {
			ifc.counters.inc(cBadUDP)
			return
		}
		ifc.deliver(ip.Src, u.SrcPort, ip.Dst, u.DstPort, ip.HopLimit, u.Payload)
	}
}

// deliver queues a UDP payload to every socket that should receive it:
// bound to dstPort (and to dst or the unspecified address), of dst's
// family, and, for a multicast dst, joined to it on this interface with a
// filter that accepts src (RFC 3678 per-socket filtering).
func (ifc *Interface) deliver(src netip.Addr, srcPort uint16, dst netip.Addr, dstPort uint16, ttl uint8, payload []byte) {
	conns := (*ifc.stack.ports.Load())[dstPort]
	if len(conns) == 0 {
		ifc.counters.inc(cNoSocket)
		return
	}
	mc := dst.IsMulticast()
	if !mc && !ifc.isLocal(dst) {
		ifc.counters.inc(cNotForUs)
		return
	}
	key := membership.Key{IfIndex: ifc.index, Group: dst}
	is4 := dst.Is4()
	n := 0
	for _, c := range conns {
		// A socket closing (not yet unlinked from the port table) is
		// skipped, not counted as a queue drop.
		if c.is4 != is4 || (c.bound.IsValid() && c.bound != dst) || c.closed.Load() {
			continue
		}
		if mc {
			st := c.filterFor(key)
			if st == nil || !st.Accepts(src) {
				continue
			}
		}
		n++
		if c.enqueue(ifc.index, src, srcPort, dst, ttl, payload) {
			ifc.counters.inc(cDatagramsReceived)
		} else {
			ifc.counters.inc(cDatagramsDropped)
		}
	}
	if n == 0 {
		if mc {
			ifc.counters.inc(cFiltered)
		} else {
			ifc.counters.inc(cNoSocket)
		}
	}
}

// isLocal reports whether a unicast or broadcast dst is addressed to this
// interface.
func (ifc *Interface) isLocal(dst netip.Addr) bool {
	if dst == limitedBroadcast {
		return true
	}
	for _, p := range ifc.addrs {
		if p.Addr() == dst {
			return true
		}
		if dst.Is4() && p.Addr().Is4() && p.Bits() < 31 && p.Contains(dst) && dst == directedBroadcast(p) {
			return true
		}
	}
	return false
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func directedBroadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

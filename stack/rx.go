package stack

import (
	"math/bits"
	"net/netip"
	"sync/atomic"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

// The receive path. Everything in this file runs on the endpoint's
// delivery goroutine for every frame, so it takes no mutex: it reads the
// immutable snapshots described in the package documentation, counts with
// atomics and queues to lock-free bounded queues. A frame it rejects costs
// no allocation (wire's parse errors are preallocated) and is counted by
// reason.

// linkHandler is the link.Handler the stack attaches to an interface's
// endpoint (a separate type, so that Interface does not export the
// handler's methods). b is the batch scratch state, used only by the
// endpoint's delivery goroutine (link.Handler: calls are never
// concurrent).
type linkHandler struct {
	ifc *Interface
	b   *rxBatch
}

// rxBatch collects, during one batch of frames, the sockets that got
// datagrams (so that each is woken once per batch) and the counter
// increments (added to the interface's counters once per batch). It
// belongs to the endpoint's delivery goroutine: no atomics.
type rxBatch struct {
	// cache is a chain of free datagrams taken from a free stack in one
	// go, the most recently freed first (see recycle.go).
	cache   *datagram
	touched []*Conn
	// seen indexes touched once it is long (a batch fanned out to many
	// sockets); nil while a linear scan is cheaper.
	seen   map[*Conn]struct{}
	counts [numCounters]uint64
	used   uint32 // bit n set: counts[n] is nonzero
}

// touchScan is the length of touched up to which touch scans it linearly.
const touchScan = 16

func (b *rxBatch) touch(c *Conn) {
	if len(b.touched) < touchScan {
		for _, o := range b.touched {
			if o == c {
				return
			}
		}
	} else {
		if b.seen == nil {
			b.seen = make(map[*Conn]struct{})
		}
		if len(b.seen) == 0 {
			for _, o := range b.touched {
				b.seen[o] = struct{}{}
			}
		}
		if _, ok := b.seen[c]; ok {
			return
		}
		b.seen[c] = struct{}{}
	}
	b.touched = append(b.touched, c)
}

// count adds one to counter n: in the batch, or at once without one.
func (ifc *Interface) count(b *rxBatch, n counter) {
	if b != nil {
		b.counts[n]++
		b.used |= 1 << n
	} else {
		ifc.counters.inc(n)
	}
}

// HandleFrames implements link.Handler.
func (h linkHandler) HandleFrames(frames [][]byte, flags []link.FrameFlags) {
	if flags == nil {
		for _, f := range frames {
			h.ifc.handleFrame(h.b, f, 0)
		}
	} else {
		for i, f := range frames {
			h.ifc.handleFrame(h.b, f, flags[i])
		}
	}
	h.b.flush(h.ifc)
}

// flush wakes the sockets the batch queued to and adds its counts.
func (b *rxBatch) flush(ifc *Interface) {
	for i, c := range b.touched {
		c.notify()
		b.touched[i] = nil
	}
	b.touched = b.touched[:0]
	if len(b.seen) > 0 {
		clear(b.seen)
	}
	for u := b.used; u != 0; u &= u - 1 {
		i := bits.TrailingZeros32(u)
		ifc.counters.add(counter(i), b.counts[i])
		b.counts[i] = 0
	}
	b.used = 0
}

// HandleLinkState implements link.Handler.
func (h linkHandler) HandleLinkState(st link.LinkState) { h.ifc.setLinkState(st) }

// handleFrame handles one received frame, described by fl.
func (ifc *Interface) handleFrame(b *rxBatch, frame []byte, fl link.FrameFlags) {
	if ifc.removed.Load() {
		return
	}
	ifc.count(b, cFramesReceived)
	eth, err := wire.CheckEthernet(frame)
	if err != nil {
		if parseKind(err) == wire.ErrUnsupported {
			ifc.count(b, cLink8023)
		} else {
			ifc.count(b, cBadLink)
		}
		return
	}
	if dst := eth.Dst(); !dst.IsMulticast() && dst != ifc.mac {
		ifc.count(b, cNotForUs)
		return
	}
	switch eth.EtherType() {
	case wire.EtherTypeIPv4:
		ifc.receiveIPv4(b, eth.Payload(), fl)
	case wire.EtherTypeIPv6:
		ifc.receiveIPv6(b, eth.Payload(), fl)
	default:
		ifc.count(b, cNotIP)
	}
}

// parseKind returns the sentinel a wire parse error wraps (ErrTruncated,
// ErrChecksum, ErrMalformed, ErrUnsupported) without allocating.
func parseKind(err error) error {
	if pe, ok := err.(*wire.ParseError); ok {
		return pe.Err
	}
	return err
}

func (ifc *Interface) countBad(b *rxBatch, err error, truncated, checksum, malformed counter) {
	switch parseKind(err) {
	case wire.ErrTruncated:
		ifc.count(b, truncated)
	case wire.ErrChecksum:
		ifc.count(b, checksum)
	default:
		ifc.count(b, malformed)
	}
}

// parseUDP parses a received UDP datagram, leaving out the checksum check
// when the link reported the checksum verified.
func parseUDP(p []byte, src, dst netip.Addr, fl link.FrameFlags) (wire.UDP, error) {
	if fl&link.FrameChecksumValid != 0 {
		return wire.ParseUDPOffloaded(p, src, dst)
	}
	return wire.ParseUDP(p, src, dst)
}

func (ifc *Interface) receiveIPv4(b *rxBatch, p []byte, fl link.FrameFlags) {
	// A view, not wire.IPv4: the fields are read where they are.
	ip, err := wire.CheckIPv4(p)
	if err != nil {
		ifc.countBad(b, err, cBadIPTruncated, cBadIPChecksum, cBadIPMalformed)
		return
	}
	if ip.MoreFragments() || ip.FragmentOffset() != 0 {
		ifc.count(b, cFragments)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	switch ip.Protocol() {
	case wire.ProtoIGMP:
		// A query or report to a unicast address must be one of ours
		// (RFC 9776 §4.1.12: any address of the interface); multicast
		// destinations are the engine's to check.
		if !dst.IsMulticast() && !ifc.isLocal(dst) {
			ifc.count(b, cNotForUs)
			return
		}
		ifc.proto.receive(src, dst, ip.TTL(), ip.RouterAlert(), 0, ip.Payload())
	case wire.ProtoUDP:
		u, err := parseUDP(ip.Payload(), src, dst, fl)
		if err != nil {
			ifc.countBad(b, err, cBadUDPTruncated, cBadUDPChecksum, cBadUDPMalformed)
			return
		}
		ifc.deliver(b, src, u.SrcPort, dst, u.DstPort, ip.TTL(), u.Payload)
	}
}

// mldTypes are the ICMPv6 types handed to the MLD engine (RFC 2710 §3,
// RFC 9777 §5).
func isMLDType(t byte) bool { return t == 130 || t == 131 || t == 132 || t == 143 }

func (ifc *Interface) receiveIPv6(b *rxBatch, p []byte, fl link.FrameFlags) {
	ip, err := wire.ParseIPv6(p)
	if err != nil {
		ifc.countBad(b, err, cBadIPTruncated, cBadIPChecksum, cBadIPMalformed)
		return
	}
	if ip.Fragment {
		ifc.count(b, cFragments)
		return
	}
	switch ip.NextHeader {
	case wire.ProtoICMPv6:
		if len(ip.Payload) == 0 || !isMLDType(ip.Payload[0]) {
			return
		}
		if !ip.Dst.IsMulticast() && !ifc.isLocal(ip.Dst) {
			ifc.count(b, cNotForUs)
			return
		}
		if wire.VerifyICMPv6(ip.Src, ip.Dst, ip.Payload) != nil {
			ifc.count(b, cBadICMPv6)
			return
		}
		ifc.proto.receive(ip.Src, ip.Dst, ip.HopLimit, ip.RouterAlert, ip.RouterAlertValue, ip.Payload)
	case wire.ProtoUDP:
		u, err := parseUDP(ip.Payload, ip.Src, ip.Dst, fl)
		if err != nil {
			ifc.countBad(b, err, cBadUDPTruncated, cBadUDPChecksum, cBadUDPMalformed)
			return
		}
		ifc.deliver(b, ip.Src, u.SrcPort, ip.Dst, u.DstPort, ip.HopLimit, u.Payload)
	}
}

// deliver queues a UDP payload to every socket that should receive it.
// For a multicast dst: the sockets joined to dst on this interface and
// bound to dstPort (and to dst or the unspecified address), whose filter
// accepts src (RFC 3678 per-socket filtering) — one lookup of
// Interface.subs. For a unicast or broadcast dst addressed to this host:
// the sockets bound to dstPort of dst's family. The payload is copied once,
// whatever the number of sockets; b is nil for a looped-back datagram
// (readers are then woken at once).
func (ifc *Interface) deliver(b *rxBatch, src netip.Addr, srcPort uint16, dst netip.Addr, dstPort uint16, ttl uint8, payload []byte) {
	if dst.IsMulticast() {
		l, ok := ifc.subs.Load(groupPort{dst, dstPort})
		if !ok {
			if _, bound := ifc.stack.ports.Load(dstPort); bound {
				ifc.count(b, cFiltered)
			} else {
				ifc.count(b, cNoSocket)
			}
			return
		}
		if ifc.fanOut(b, l.subs, src, srcPort, dst, ttl, payload) == 0 {
			ifc.count(b, cFiltered)
		}
		return
	}
	if !ifc.isLocal(dst) {
		ifc.count(b, cNotForUs)
		return
	}
	var subs []sub
	if l, ok := ifc.stack.ports.Load(dstPort); ok {
		subs = l.subs
	}
	if ifc.fanOut(b, subs, src, srcPort, dst, ttl, payload) == 0 {
		ifc.count(b, cNoSocket)
	}
}

// fanOut queues the datagram to every subscriber that accepts it — of dst's
// family, bound to dst or the unspecified address, open, whose filter
// accepts src — copying the payload once. It returns how many accepted it
// (queued or dropped for a full queue).
func (ifc *Interface) fanOut(b *rxBatch, subs []sub, src netip.Addr, srcPort uint16, dst netip.Addr, ttl uint8, payload []byte) int {
	var d *datagram
	refs := int32(refBias)
	if len(subs) == 1 {
		refs = 1
	}
	n, queued := 0, int32(0)
	is4 := dst.Is4()
	for i := range subs {
		sb := &subs[i] // not a copy: subs is immutable
		c := sb.c
		// A socket closing (not yet unlinked) is skipped, not counted as
		// a queue drop.
		if c.is4 != is4 || (c.bound.IsValid() && c.bound != dst) || c.closed.Load() || !sb.st.Accepts(src) {
			continue
		}
		if d == nil {
			d = newDatagram(b, refs, ifc.index, src, srcPort, dst, ttl, payload)
		}
		n++
		queued += ifc.queueTo(c, d, b)
	}
	settle(d, refs, queued)
	return n
}

// settle gives d the reference count its queue entries need once the
// producer is done pushing it with refs set (see datagram), freeing it if
// no queue took it.
func settle(d *datagram, refs, queued int32) {
	switch {
	case d == nil:
	case queued == 0:
		d.free()
	case refs != 1:
		if atomic.AddInt32(&d.refs, queued-refs) == 0 {
			d.free()
		}
	}
}

// queueTo queues d to c and counts the outcome; it returns 1 if queued.
func (ifc *Interface) queueTo(c *Conn, d *datagram, b *rxBatch) int32 {
	if c.enqueue(d, b) {
		ifc.count(b, cDatagramsReceived)
		return 1
	}
	ifc.count(b, cDatagramsDropped)
	return 0
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

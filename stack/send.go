package stack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/mcstack/mcstack/wire"
)

type sendBuf struct{ udp, frame []byte }

// WriteToAddrPort sends b to dst: a multicast group (on the socket's
// multicast interface), the limited broadcast address or an interface's
// directed broadcast address. Unicast destinations return ErrNoRoute (no
// neighbor resolution); an invalid destination, one of the other family,
// an IPv4-mapped one on a udp6 socket or port 0 returns ErrBadDestination.
// Errors are *net.OpError with Source the local and Addr the destination
// address. Multicast is looped back to the host's own
// sockets unless SetMulticastLoopback(false). It never blocks.
func (c *Conn) WriteToAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	if c.closed.Load() {
		return 0, c.writeErr(dst, ErrClosed)
	}
	if c.writeDeadline.passed.Load() {
		return 0, c.writeErr(dst, os.ErrDeadlineExceeded)
	}
	a := dst.Addr()
	if c.is4 {
		a = a.Unmap()
	}
	// An IPv4-mapped destination on a udp6 socket would go out as an IPv6
	// packet to a mapped address (with an IPv4 multicast MAC): refuse it.
	if !a.IsValid() || a.Is4() != c.is4 || a.Is4In6() || dst.Port() == 0 {
		return 0, c.writeErr(dst, ErrBadDestination)
	}
	ifc, dmac, err := c.route(a)
	if err != nil {
		return 0, c.writeErr(dst, err)
	}
	src := c.bound
	if !src.IsValid() || src.IsMulticast() {
		switch {
		case a.Is4():
			src = ifc.src4
		case wire.MulticastScope(a) <= 2:
			src = ifc.src6LL
		default:
			src = ifc.src6
		}
	}
	if !src.IsValid() {
		return 0, c.writeErr(dst, fmt.Errorf("on %s: %w", ifc.name, ErrNoAddress))
	}
	ipHeader := 40
	if a.Is4() {
		ipHeader = 20
	}
	if ipHeader+wire.UDPHeaderLen+len(b) > ifc.mtu {
		return 0, c.writeErr(dst, fmt.Errorf("%d bytes on %s (MTU %d): %w", len(b), ifc.name, ifc.mtu, ErrMessageTooLong))
	}
	sb, _ := c.sendBufs.Get().(*sendBuf)
	if sb == nil {
		sb = &sendBuf{}
	}
	defer c.sendBufs.Put(sb)
	ttl, tos := uint8(c.ttl.Load()), uint8(c.tos.Load())
	sb.udp, err = wire.AppendUDP(sb.udp[:0], src, a, c.port, dst.Port(), b)
	if err != nil {
		return 0, c.writeErr(dst, err)
	}
	if a.Is4() {
		sb.frame = wire.AppendEthernet(sb.frame[:0], dmac, ifc.mac, wire.EtherTypeIPv4)
		sb.frame, err = wire.AppendIPv4(sb.frame, wire.IPv4{
			ID: uint16(c.ipID.Add(1)), TOS: tos, TTL: ttl, Protocol: wire.ProtoUDP, Src: src, Dst: a,
		}, sb.udp)
	} else {
		sb.frame = wire.AppendEthernet(sb.frame[:0], dmac, ifc.mac, wire.EtherTypeIPv6)
		sb.frame, err = wire.AppendIPv6(sb.frame, wire.IPv6{
			TrafficClass: tos, HopLimit: ttl, NextHeader: wire.ProtoUDP, Src: src, Dst: a,
		}, sb.udp)
	}
	if err != nil {
		return 0, c.writeErr(dst, err)
	}
	if a.IsMulticast() && !c.noLoop.Load() {
		ifc.counters.inc(cLoopedBack)
		ifc.deliver(nil, src, c.port, a, dst.Port(), ttl, b)
	}
	if err := ifc.ep.WriteFrame(sb.frame); err != nil {
		ifc.counters.inc(cSendErrors)
		return 0, c.writeErr(dst, fmt.Errorf("on %s: %w", ifc.name, err))
	}
	ifc.counters.inc(cFramesSent)
	return len(b), nil
}

// route picks the outgoing interface and destination MAC from the
// receive-path snapshots (no lock).
func (c *Conn) route(a netip.Addr) (*Interface, wire.MAC, error) {
	if a.IsMulticast() || a == limitedBroadcast {
		ifc := c.mcastIfc.Load()
		if ifc == nil || ifc.removed.Load() {
			l := *c.stack.ifList.Load()
			if len(l) != 1 {
				return nil, wire.MAC{}, fmt.Errorf("no multicast interface set and %d interfaces: %w", len(l), ErrNoRoute)
			}
			ifc = l[0]
		}
		if a == limitedBroadcast {
			return ifc, wire.BroadcastMAC, nil
		}
		mac, _ := wire.MulticastMAC(a)
		return ifc, mac, nil
	}
	for _, ifc := range *c.stack.ifList.Load() {
		for _, p := range ifc.addrs {
			if a.Is4() && p.Addr().Is4() && p.Bits() < 31 && a == directedBroadcast(p) {
				return ifc, wire.BroadcastMAC, nil
			}
		}
	}
	return nil, wire.MAC{}, ErrNoRoute
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opErr("write", fmt.Errorf("destination %v is a %T, not a *net.UDPAddr: %w", addr, addr, ErrBadDestination))
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// deadline is one direction's deadline. gen identifies the current
// setting, so that a timer stopped too late (its function already waiting
// for dlMu) cannot fire a deadline set after it. timer and gen are guarded
// by Conn.dlMu; passed is set (under dlMu) when the current setting
// passes and cleared by the next setting, and read without a lock by
// every read or write (one load).
type deadline struct {
	timer  *time.Timer
	gen    uint64
	passed atomic.Bool
}

// SetDeadline implements net.PacketConn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline implements net.PacketConn: a pending or later ReadMsg
// fails with an error wrapping os.ErrDeadlineExceeded once t passes; the
// zero time removes the deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", ErrClosed)
	}
	c.setDeadline(&c.readDeadline, t)
	return nil
}

// SetWriteDeadline implements net.PacketConn. Writes never block, so it
// only makes writes after t fail.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", ErrClosed)
	}
	c.setDeadline(&c.writeDeadline, t)
	return nil
}

func (c *Conn) setDeadline(d *deadline, t time.Time) {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.passed.Store(false)
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		c.expire(d)
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		c.dlMu.Lock()
		defer c.dlMu.Unlock()
		if d.gen == gen {
			c.expire(d)
		}
	})
}

// expire marks d's current setting passed; for the read deadline it then
// wakes parked readers (see Conn.next). The caller holds dlMu.
func (c *Conn) expire(d *deadline) {
	d.passed.Store(true)
	if d == &c.readDeadline {
		c.notify()
	}
}

// stopDeadlines stops both deadline timers (socket close).
func (c *Conn) stopDeadlines() {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	for _, d := range [...]*deadline{&c.readDeadline, &c.writeDeadline} {
		d.gen++
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
		}
	}
}

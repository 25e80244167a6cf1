package stack

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/mcstack/mcstack/link"
	"github.com/mcstack/mcstack/wire"
)

var (
	peer4  = netip.MustParseAddr("192.0.2.99")
	peer6  = netip.MustParseAddr("2001:db8::99")
	ourMAC = wire.MAC{0x02, 0, 0, 0, 0, 1} // test0's
)

// counterDelta returns the change of each named counter across f.
func counterDelta(ifc *Interface, f func()) map[string]uint64 {
	before := ifc.Status().Counters
	f()
	after := ifc.Status().Counters
	out := map[string]uint64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func wantCounters(t *testing.T, got map[string]uint64, want map[string]uint64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counter changes %v, want %v", got, want)
	}
}

func wantPayloads(t *testing.T, c *Conn, what string, want ...string) []drained {
	t.Helper()
	got := drainConn(c)
	var ps []string
	for _, d := range got {
		ps = append(ps, d.payload)
	}
	if fmt.Sprint(ps) != fmt.Sprint(want) {
		t.Fatalf("%s: got %q, want %q", what, ps, want)
	}
	return got
}

func TestReceiveUnicast(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	any4 := mustListen(t, s, "udp4", "0.0.0.0:5000")
	bound := mustListen(t, s, "udp4", "192.0.2.1:5000")
	any6 := mustListen(t, s, "udp6", "[::]:5000")

	d := counterDelta(ifc, func() {
		ep.inject(udpFrameTo(t, ourMAC, peer4, hostAddr.Addr(), 4000, 5000, []byte("to us")))
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 1, "datagrams_received": 2})
	got := wantPayloads(t, any4, "unspecified-bound socket", "to us")
	if cm := got[0].cm; cm.Src != netip.AddrPortFrom(peer4, 4000) || cm.Dst != hostAddr.Addr() || cm.IfIndex != ifc.Index() || cm.TTL != 8 {
		t.Fatalf("control message %+v", cm)
	}
	wantPayloads(t, bound, "address-bound socket", "to us")
	wantPayloads(t, any6, "udp6 socket")

	d = counterDelta(ifc, func() {
		ep.inject(udpFrameTo(t, ourMAC, peer6, host6.Addr(), 4000, 5000, []byte("to us v6")))
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 1, "datagrams_received": 1})
	wantPayloads(t, any6, "udp6 socket", "to us v6")
	wantPayloads(t, any4, "udp4 socket")

	// Our MAC but another host's address; another host's MAC.
	d = counterDelta(ifc, func() {
		ep.inject(udpFrameTo(t, ourMAC, peer4, netip.MustParseAddr("192.0.2.77"), 4000, 5000, []byte("x")))
		ep.inject(udpFrameTo(t, wire.MAC{0x02, 0, 0, 0, 0, 0x77}, peer4, hostAddr.Addr(), 4000, 5000, []byte("y")))
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 2, "not_for_us": 2})
	// No socket on the port.
	d = counterDelta(ifc, func() {
		ep.inject(udpFrameTo(t, ourMAC, peer4, hostAddr.Addr(), 4000, 5001, []byte("z")))
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 1, "no_socket": 1})
	wantPayloads(t, any4, "after misaddressed frames")
	wantPayloads(t, bound, "after misaddressed frames")
}

func TestReceiveBroadcast(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	any4 := mustListen(t, s, "udp4", "0.0.0.0:5000")
	bound := mustListen(t, s, "udp4", "192.0.2.1:5000")
	for _, dst := range []string{"255.255.255.255", "192.0.2.255"} {
		d := counterDelta(ifc, func() {
			ep.inject(udpFrameTo(t, wire.BroadcastMAC, peer4, netip.MustParseAddr(dst), 4000, 5000, []byte(dst)))
		})
		wantCounters(t, d, map[string]uint64{"frames_received": 1, "datagrams_received": 1})
		got := wantPayloads(t, any4, "unspecified-bound socket", dst)
		if got[0].cm.Dst.String() != dst {
			t.Fatalf("Dst %v, want %s", got[0].cm.Dst, dst)
		}
		// A socket bound to a unicast address does not get broadcasts.
		wantPayloads(t, bound, "address-bound socket")
	}
	// The broadcast address of another subnet is not ours.
	d := counterDelta(ifc, func() {
		ep.inject(udpFrameTo(t, wire.BroadcastMAC, peer4, netip.MustParseAddr("198.51.100.255"), 4000, 5000, []byte("x")))
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 1, "not_for_us": 1})
}

func TestReceiveGroupBoundSocket(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	g1, g2 := netip.MustParseAddr("239.1.1.1"), netip.MustParseAddr("239.2.2.2")
	bound := mustListen(t, s, "udp4", "239.1.1.1:5000")
	any4 := mustListen(t, s, "udp4", "0.0.0.0:5000")
	for _, c := range []*Conn{bound, any4} {
		for _, g := range []netip.Addr{g1, g2} {
			must(t, c.JoinGroup(ifc, g))
		}
	}
	ep.inject(udpFrame(t, peer4, g1, 4000, 5000, []byte("g1")))
	ep.inject(udpFrame(t, peer4, g2, 4000, 5000, []byte("g2")))
	wantPayloads(t, bound, "socket bound to g1", "g1")
	wantPayloads(t, any4, "unspecified-bound socket", "g1", "g2")
	if got := bound.LocalAddr().String(); got != "239.1.1.1:5000" {
		t.Fatalf("LocalAddr %s", got)
	}
	// An unjoined group reaches no socket and is counted as filtered.
	d := counterDelta(ifc, func() {
		ep.inject(udpFrame(t, peer4, netip.MustParseAddr("239.3.3.3"), 4000, 5000, []byte("g3")))
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 1, "filtered": 1})
}

func TestReceiveIPv6Multicast(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	g := netip.MustParseAddr("ff3e::1234")
	c6 := mustListen(t, s, "udp6", "[::]:5000")
	c4 := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c6.JoinGroup(ifc, g))
	must(t, c6.BlockSource(ifc, g, netip.MustParseAddr("2001:db8::66")))
	ep.inject(udpFrame(t, netip.MustParseAddr("2001:db8::66"), g, 4000, 5000, []byte("blocked")))
	ep.inject(udpFrame(t, peer6, g, 4000, 5000, []byte("v6")))
	got := wantPayloads(t, c6, "udp6 socket", "v6")
	if cm := got[0].cm; cm.Src != netip.AddrPortFrom(peer6, 4000) || cm.Dst != g || cm.TTL != 8 {
		t.Fatalf("control message %+v", cm)
	}
	wantPayloads(t, c4, "udp4 socket")
	// The blocking happened per socket; a second socket without the block
	// gets both.
	c6b := mustListen(t, s, "udp6", "[::]:5000")
	must(t, c6b.JoinGroup(ifc, g))
	ep.inject(udpFrame(t, netip.MustParseAddr("2001:db8::66"), g, 4000, 5000, []byte("blocked")))
	wantPayloads(t, c6, "udp6 socket with the block")
	wantPayloads(t, c6b, "udp6 socket without the block", "blocked")
}

func TestReceiveCopyPerSocket(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	g := netip.MustParseAddr("239.1.1.1")
	var cs []*Conn
	for range 3 {
		c := mustListen(t, s, "udp4", "0.0.0.0:5000")
		must(t, c.JoinGroup(ifc, g))
		cs = append(cs, c)
	}
	d := counterDelta(ifc, func() { ep.inject(udpFrame(t, peer4, g, 4000, 5000, []byte("each"))) })
	wantCounters(t, d, map[string]uint64{"frames_received": 1, "datagrams_received": 3})
	bufs := make([]string, 0, 3)
	for _, c := range cs {
		p, _ := readOne(t, c, time.Second)
		bufs = append(bufs, p)
	}
	if fmt.Sprint(bufs) != "[each each each]" {
		t.Fatalf("got %q", bufs)
	}
}

func TestReceiveFullQueue(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{QueueLen: 4})
	g := netip.MustParseAddr("239.1.1.1")
	slow := mustListen(t, s, "udp4", "0.0.0.0:5000")
	fast := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, slow.JoinGroup(ifc, g))
	must(t, fast.JoinGroup(ifc, g))
	frame := udpFrame(t, peer4, g, 4000, 5000, []byte("x"))
	done := make(chan map[string]uint64)
	go func() {
		done <- counterDelta(ifc, func() {
			for range 10 {
				ep.inject(frame)
				drainConn(fast) // the fast reader keeps up
			}
		})
	}()
	select {
	case d := <-done:
		wantCounters(t, d, map[string]uint64{"frames_received": 10, "datagrams_received": 14, "datagrams_dropped": 6})
	case <-time.After(10 * time.Second):
		t.Fatal("the receive path blocked on a full queue")
	}
	if n := slow.Dropped(); n != 6 {
		t.Fatalf("slow.Dropped() = %d, want 6", n)
	}
	if n := fast.Dropped(); n != 0 {
		t.Fatalf("fast.Dropped() = %d, want 0", n)
	}
	if n := len(drainConn(slow)); n != 4 {
		t.Fatalf("slow socket queued %d, want 4", n)
	}
}

// fragment4 builds an IPv4 fragment of a UDP datagram (first fragment when
// off is 0, with More Fragments set; otherwise a later one).
func fragment4(t *testing.T, off uint16, more bool) []byte {
	u, err := wire.AppendUDP(nil, peer4, eg4, 4000, 5000, []byte("fragment"))
	must(t, err)
	f := wire.AppendEthernet(nil, ourMAC, wire.MAC{2, 0, 0, 0, 0, 0x99}, wire.EtherTypeIPv4)
	f, err = wire.AppendIPv4(f, wire.IPv4{TTL: 8, Protocol: wire.ProtoUDP, Src: peer4, Dst: eg4, MoreFragments: more, FragmentOffset: off}, u)
	must(t, err)
	return f
}

func TestReceiveFragmentsDropped(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c4 := mustListen(t, s, "udp4", "0.0.0.0:5000")
	c6 := mustListen(t, s, "udp6", "[::]:5000")
	must(t, c4.JoinGroup(ifc, eg4))
	must(t, c6.JoinGroup(ifc, eg6))
	// IPv6: a Fragment header (RFC 8200 §4.5) before the UDP header.
	u, err := wire.AppendUDP(nil, peer6, eg6, 4000, 5000, []byte("fragment"))
	must(t, err)
	fh := make([]byte, 8, 8+len(u))
	fh[0] = wire.ProtoUDP
	binary.BigEndian.PutUint16(fh[2:], 1) // offset 0, M flag
	binary.BigEndian.PutUint32(fh[4:], 0x1234)
	f6 := wire.AppendEthernet(nil, ourMAC, wire.MAC{2, 0, 0, 0, 0, 0x99}, wire.EtherTypeIPv6)
	f6, err = wire.AppendIPv6(f6, wire.IPv6{HopLimit: 8, NextHeader: wire.ProtoFragment, Src: peer6, Dst: eg6}, append(fh, u...))
	must(t, err)
	d := counterDelta(ifc, func() {
		ep.inject(fragment4(t, 0, true))
		ep.inject(fragment4(t, 3, false))
		ep.inject(f6)
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 3, "fragments": 3})
	wantPayloads(t, c4, "udp4")
	wantPayloads(t, c6, "udp6")
	// The same datagram unfragmented is delivered.
	ep.inject(fragment4(t, 0, false))
	wantPayloads(t, c4, "udp4", "fragment")
}

func TestReceiveBadChecksumAndMalformed(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	good := udpFrame(t, peer4, eg4, 4000, 5000, []byte("payload"))
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xff // payload byte: the UDP checksum no longer matches
	badIP := append([]byte(nil), good...)
	badIP[wire.EthernetHeaderLen] = 0x35 // version 3
	d := counterDelta(ifc, func() {
		ep.inject(bad)
		ep.inject(badIP)
		ep.inject(good[:10])                                    // shorter than an Ethernet header
		ep.inject(append(good[:12:12], 0x88, 0xb5, 1, 2, 3, 4)) // another EtherType
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 4, "bad_udp_checksum": 1, "bad_ip_malformed": 1, "bad_link": 1, "not_ip": 1})
	wantPayloads(t, c, "after bad frames")
	ep.inject(good)
	wantPayloads(t, c, "after a good frame", "payload")
}

// A frame whose checksum the link reports verified (link.FrameChecksumValid)
// is not checked again, for IPv4 and IPv6; frames without the flag in the
// same batch are checked. (wire's tests show the offloaded parse still
// checks every length.)
func TestReceiveChecksumVerifiedByLink(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c4 := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c4.JoinGroup(ifc, eg4))
	c6 := mustListen(t, s, "udp6", "[::]:5000")
	must(t, c6.JoinGroup(ifc, eg6))
	corrupt := func(f []byte) []byte {
		f = append([]byte(nil), f...)
		f[len(f)-1] ^= 0xff // the UDP checksum no longer matches
		return f
	}
	bad4 := corrupt(udpFrame(t, peer4, eg4, 4000, 5000, []byte("four")))
	bad6 := corrupt(udpFrame(t, peer6, eg6, 4000, 5000, []byte("six")))
	v := link.FrameChecksumValid
	d := counterDelta(ifc, func() {
		ep.handler.HandleFrames([][]byte{bad4, bad6, bad4, bad6}, []link.FrameFlags{v, v, 0, 0})
	})
	wantCounters(t, d, map[string]uint64{"frames_received": 4, "datagrams_received": 2, "bad_udp_checksum": 2})
	wantPayloads(t, c4, "udp4", "fou\x8d")
	wantPayloads(t, c6, "udp6", "si\x87")
}

// A frame arriving after its interface was removed is ignored.
func TestReceiveAfterRemove(t *testing.T) {
	s, ifcs, eps := newTwoIfcStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifcs[0], eg4))
	must(t, c.JoinGroup(ifcs[1], eg4))
	h := eps[0].handler
	must(t, s.RemoveInterface(ifcs[0]))
	h.HandleFrames([][]byte{udpFrame(t, peer4, eg4, 4000, 5000, []byte("removed"))}, nil)
	eps[1].inject(udpFrame(t, peer4, eg4, 4000, 5000, []byte("live")))
	got := wantPayloads(t, c, "socket", "live")
	if got[0].cm.IfIndex != ifcs[1].Index() {
		t.Fatalf("IfIndex %d", got[0].cm.IfIndex)
	}
}

// In the steady state, delivering a datagram (inject, then read) does not
// allocate, whether one socket or sixteen get it.
func TestReceiveAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, n := range []int{1, 16} {
		t.Run(fmt.Sprint(n, "sockets"), func(t *testing.T) {
			s, ifc, ep := newTestStack(t, Config{})
			var cs []*Conn
			for range n {
				c := mustListen(t, s, "udp4", "0.0.0.0:5000")
				must(t, c.JoinSourceSpecificGroup(ifc, eg4, peer4))
				cs = append(cs, c)
			}
			// Sockets on other ports and groups, so lookups are not trivial.
			for i := range 8 {
				c := mustListen(t, s, "udp4", fmt.Sprintf("0.0.0.0:%d", 6000+i))
				must(t, c.JoinGroup(ifc, netip.AddrFrom4([4]byte{239, 0, 0, byte(i)})))
			}
			frame := udpFrame(t, peer4, eg4, 4000, 5000, make([]byte, 1000))
			batch := [][]byte{frame}
			buf := make([]byte, 1500)
			var fail error
			allocs := testing.AllocsPerRun(1000, func() {
				ep.handler.HandleFrames(batch, nil)
				for _, c := range cs {
					if n, _, err := c.ReadMsg(buf); err != nil || n != 1000 {
						fail = fmt.Errorf("ReadMsg = %d, %v", n, err)
					}
				}
			})
			if fail != nil {
				t.Fatal(fail)
			}
			if allocs != 0 {
				t.Fatalf("%v allocations per delivered datagram, want 0", allocs)
			}
		})
	}
}

// BenchmarkDeliver measures the receive path: one datagram injected and
// read.
func BenchmarkDeliver(b *testing.B) {
	s, ifc, ep := newTestStack(b, Config{})
	c := mustListen(b, s, "udp4", "0.0.0.0:5000")
	if err := c.JoinGroup(ifc, eg4); err != nil {
		b.Fatal(err)
	}
	frame := udpFrame(b, peer4, eg4, 4000, 5000, make([]byte, 1000))
	batch := [][]byte{frame}
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		ep.handler.HandleFrames(batch, nil)
		if _, _, err := c.ReadMsg(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliverBatch: batches of 64 frames (as a ring block hands them
// over), each datagram 1,000 bytes, read back with ReadBatch; ns/op is per
// datagram.
func BenchmarkDeliverBatch(b *testing.B) {
	for _, sockets := range []int{1, 4} {
		b.Run(fmt.Sprintf("sockets=%d", sockets), func(b *testing.B) {
			s, ifc, ep := newTestStack(b, Config{})
			var conns []*Conn
			for range sockets {
				c := mustListen(b, s, "udp4", "0.0.0.0:5000")
				if err := c.JoinGroup(ifc, eg4); err != nil {
					b.Fatal(err)
				}
				conns = append(conns, c)
			}
			const n = 64
			batch := make([][]byte, n)
			for i := range batch {
				batch[i] = udpFrame(b, peer4, eg4, 4000, 5000, make([]byte, 1000))
			}
			ms := make([]Message, n)
			for i := range ms {
				ms[i].Buf = make([]byte, 1500)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += n {
				ep.handler.HandleFrames(batch, nil)
				for _, c := range conns {
					for got := 0; got < n; {
						k, err := c.ReadBatch(ms)
						if err != nil {
							b.Fatal(err)
						}
						got += k
					}
				}
			}
		})
	}
}

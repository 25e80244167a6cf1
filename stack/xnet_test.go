package stack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mcstack/mcstack/membership"
	"github.com/mcstack/mcstack/wire"
)

// Habits from golang.org/x/net/ipv4 and ipv6.

// IPv4-mapped addresses, which netip.AddrFromSlice(net.ParseIP(...))
// returns, are the IPv4 addresses they map at every entry point.
func TestIPv4MappedAddressesUnmapped(t *testing.T) {
	mapped := func(s string) netip.Addr {
		a, ok := netip.AddrFromSlice(net.ParseIP(s))
		if !ok || !a.Is4In6() {
			t.Fatalf("%s did not parse as a mapped address: %v", s, a)
		}
		return a
	}
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	g, src := mapped("232.1.1.1"), mapped("192.0.2.99")
	must(t, c.JoinSourceSpecificGroup(ifc, g, src))
	mode, srcs, err := c.SourceFilter(ifc, g)
	if err != nil || mode != membership.Include || len(srcs) != 1 || srcs[0] != peer4 {
		t.Fatalf("SourceFilter(mapped) = %v %v %v", mode, srcs, err)
	}
	must(t, c.SetSourceFilter(ifc, mapped("239.1.1.1"), membership.Exclude, []netip.Addr{mapped("192.0.2.7")}))
	must(t, c.BlockSource(ifc, mapped("239.1.1.1"), mapped("192.0.2.8")))
	ep.inject(udpFrame(t, peer4, netip.MustParseAddr("232.1.1.1"), 4000, 5000, []byte("ssm")))
	wantPayloads(t, c, "mapped join", "ssm")
	must(t, c.LeaveGroup(ifc, g))
	if _, _, err := c.SourceFilter(ifc, netip.MustParseAddr("232.1.1.1")); !errors.Is(err, membership.ErrNotJoined) {
		t.Fatalf("after leaving the mapped group: %v", err)
	}
	// An interface address given mapped.
	s2 := New(Config{})
	defer s2.Close()
	ifc2, err := s2.AddInterface(newTestEndpoint("test1", 2), InterfaceConfig{Addrs: []netip.Prefix{netip.PrefixFrom(mapped("192.0.2.50"), 120)}})
	must(t, err)
	if a := ifc2.Addrs()[0]; a != netip.MustParsePrefix("192.0.2.50/24") {
		t.Fatalf("mapped interface address became %v", a)
	}
}

// SetTOS / SetTrafficClass set the DSCP octet of outgoing datagrams.
func TestSetTOS(t *testing.T) {
	s, _, ep := newTestStack(t, Config{})
	for _, tc := range []struct {
		network, laddr, dst string
	}{{"udp4", "0.0.0.0:0", "239.1.1.1:6000"}, {"udp6", "[::]:0", "[ff0e::1]:6000"}} {
		c := mustListen(t, s, tc.network, tc.laddr)
		must(t, c.SetTOS(0xb8))
		if c.TOS() != 0xb8 || c.TrafficClass() != 0xb8 {
			t.Fatalf("TOS() = %d", c.TOS())
		}
		if _, err := c.WriteToAddrPort([]byte("x"), netip.MustParseAddrPort(tc.dst)); err != nil {
			t.Fatal(err)
		}
		fs := ep.writtenFrames()
		eth, _ := wire.ParseEthernet(fs[len(fs)-1])
		var got uint8
		if eth.EtherType == wire.EtherTypeIPv4 {
			ip, _ := wire.ParseIPv4(eth.Payload)
			got = ip.TOS
		} else {
			ip, _ := wire.ParseIPv6(eth.Payload)
			got = ip.TrafficClass
		}
		if got != 0xb8 {
			t.Fatalf("%s: TOS on the wire %#x, want 0xb8", tc.network, got)
		}
		if err := c.SetTOS(256); !errors.Is(err, ErrBadTOS) {
			t.Fatalf("SetTOS(256) = %v", err)
		}
	}
}

// SetReadBuffer sizes the receive queue; resizing keeps what is queued.
func TestSetReadBuffer(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	must(t, c.SetReadBuffer(3*readBufferUnit))
	for i := range 5 {
		ep.inject(udpFrame(t, peer4, eg4, 4000, 5000, []byte(fmt.Sprint(i))))
	}
	if c.Dropped() != 2 {
		t.Fatalf("dropped %d of 5 with a queue of 3, want 2", c.Dropped())
	}
	must(t, c.SetReadBuffer(10*readBufferUnit)) // grows, keeping 0, 1, 2
	for i := 5; i < 10; i++ {
		ep.inject(udpFrame(t, peer4, eg4, 4000, 5000, []byte(fmt.Sprint(i))))
	}
	wantPayloads(t, c, "after growing", "0", "1", "2", "5", "6", "7", "8", "9")
	if c.ReadBuffer() != 10*readBufferUnit {
		t.Fatalf("ReadBuffer() = %d", c.ReadBuffer())
	}
	if err := c.SetReadBuffer(0); !errors.Is(err, ErrBadBufferSize) {
		t.Fatalf("SetReadBuffer(0) = %v", err)
	}
}

// indexedEndpoint is a test endpoint on a "kernel" interface.
type indexedEndpoint struct {
	*testEndpoint
	index int
}

func (e *indexedEndpoint) Index() int { return e.index }

// An endpoint's kernel ifindex is the interface's index, so a received
// datagram's IfIndex names it; InterfaceByIndex finds it.
func TestKernelIndex(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	ep := &indexedEndpoint{testEndpoint: newTestEndpoint("eth7", 1), index: 7}
	ifc, err := s.AddInterface(ep, InterfaceConfig{Addrs: []netip.Prefix{hostAddr}})
	must(t, err)
	if ifc.Index() != 7 {
		t.Fatalf("Index() = %d, want the kernel's 7", ifc.Index())
	}
	other, err := s.AddInterface(newTestEndpoint("mem0", 2), InterfaceConfig{})
	must(t, err)
	if other.Index() == 7 || other.Index() <= 0 {
		t.Fatalf("second interface got index %d", other.Index())
	}
	if _, err := s.AddInterface(&indexedEndpoint{testEndpoint: newTestEndpoint("eth7b", 3), index: 7}, InterfaceConfig{}); !errors.Is(err, ErrInterfaceExists) {
		t.Fatalf("a second endpoint with ifindex 7: %v", err)
	}
	if got, err := s.InterfaceByIndex(7); err != nil || got != ifc {
		t.Fatalf("InterfaceByIndex(7) = %v, %v", got, err)
	}
	if _, err := s.InterfaceByIndex(99); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("InterfaceByIndex(99) = %v", err)
	}
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	ep.inject(udpFrame(t, peer4, eg4, 4000, 5000, []byte("x")))
	if _, cm := readOne(t, c, 5*time.Second); cm.IfIndex != 7 {
		t.Fatalf("ControlMessage.IfIndex = %d, want 7", cm.IfIndex)
	}
}

// ReadBatch takes every queued datagram up to the slice's length in one
// call, with per-message source, destination and interface.
func TestReadBatch(t *testing.T) {
	s, ifc, ep := newTestStack(t, Config{})
	c := mustListen(t, s, "udp4", "0.0.0.0:5000")
	must(t, c.JoinGroup(ifc, eg4))
	frames := make([][]byte, 5)
	for i := range frames {
		frames[i] = udpFrame(t, peer4, eg4, 4000+uint16(i), 5000, []byte(fmt.Sprintf("datagram %d", i)))
	}
	ep.handler.HandleFrames(frames, nil)
	ms := make([]Message, 3)
	for i := range ms {
		ms[i].Buf = make([]byte, 9) // "datagram " fits; the digit is cut
	}
	n, err := c.ReadBatch(ms)
	if err != nil || n != 3 {
		t.Fatalf("ReadBatch = %d, %v; want 3", n, err)
	}
	for i, m := range ms[:n] {
		if m.N != 9 || !m.Truncated || m.Src.Port() != 4000+uint16(i) || m.Dst != eg4 || m.IfIndex != ifc.Index() {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	n, err = c.ReadBatch(ms)
	if err != nil || n != 2 {
		t.Fatalf("second ReadBatch = %d, %v; want the 2 left", n, err)
	}
	must(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	if _, err := c.ReadBatch(ms); !isTimeout(err) {
		t.Fatalf("ReadBatch on an empty queue past the deadline: %v", err)
	}
}

package stack_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/mcstack/mcstack/link/memlan"
	"github.com/mcstack/mcstack/stack"
	"github.com/mcstack/mcstack/wire"
)

// Three hosts on an in-memory LAN. The receiver joins 232.1.1.1 for the
// source 10.0.0.2 only (source-specific multicast); both other hosts send
// to the group, and only 10.0.0.2's datagram is received.
func Example() {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	host := func(name string, mac byte, addr string) (*stack.Stack, *stack.Interface) {
		s := stack.New(stack.Config{})
		ep := lan.NewEndpoint(name, memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, mac}, MTU: 1500})
		ifc, err := s.AddInterface(ep, stack.InterfaceConfig{Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}})
		if err != nil {
			panic(err)
		}
		return s, ifc
	}
	recv, ifc := host("recv", 1, "10.0.0.1/24")
	defer recv.Close()
	group := netip.MustParseAddr("232.1.1.1")
	c, err := recv.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), 5000))
	if err != nil {
		panic(err)
	}
	if err := c.JoinSourceSpecificGroup(ifc, group, netip.MustParseAddr("10.0.0.2")); err != nil {
		panic(err)
	}
	// Wait until the NIC's multicast filter accepts the group.
	if err := ifc.Sync(context.Background()); err != nil {
		panic(err)
	}

	for _, h := range []struct{ name, addr string }{{"b", "10.0.0.3/24"}, {"a", "10.0.0.2/24"}} {
		s, _ := host(h.name, h.name[0], h.addr)
		defer s.Close()
		sc, err := s.ListenUDP("udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
		if err != nil {
			panic(err)
		}
		if _, err := sc.WriteToAddrPort([]byte("hello from "+h.name), netip.AddrPortFrom(group, 5000)); err != nil {
			panic(err)
		}
	}

	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromAddrPort(buf)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q from %v\n", buf[:n], from.Addr())
	// b's datagram went out first: had it passed the filter, it would have
	// been read above; nothing else is queued either.
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, _, err = c.ReadFromAddrPort(buf)
	fmt.Println("anything else:", !errors.Is(err, os.ErrDeadlineExceeded))
	// Output:
	// "hello from a" from 10.0.0.2
	// anything else: false
}

// A receiver reading in batches, as with x/net/ipv4's ReadBatch: one call
// returns every datagram queued (up to len(ms)), each with its source,
// group and interface.
func ExampleConn_ReadBatch() {
	lan := memlan.New(memlan.Options{})
	defer lan.Close()
	recv := stack.New(stack.Config{})
	defer recv.Close()
	ifc, err := recv.AddInterface(lan.NewEndpoint("recv", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 1}}),
		stack.InterfaceConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		panic(err)
	}
	group := netip.MustParseAddr("239.1.2.3")
	c, err := recv.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:5000"))
	if err != nil {
		panic(err)
	}
	if err := c.JoinGroup(ifc, group); err != nil {
		panic(err)
	}
	ifc.Sync(context.Background())

	send := stack.New(stack.Config{})
	defer send.Close()
	if _, err := send.AddInterface(lan.NewEndpoint("send", memlan.EndpointConfig{MAC: wire.MAC{2, 0, 0, 0, 0, 2}}),
		stack.InterfaceConfig{Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}); err != nil {
		panic(err)
	}
	sc, err := send.ListenUDP("udp4", netip.MustParseAddrPort("0.0.0.0:4000"))
	if err != nil {
		panic(err)
	}
	for i := range 3 {
		sc.WriteToAddrPort(fmt.Appendf(nil, "datagram %d", i), netip.AddrPortFrom(group, 5000))
	}

	ms := make([]stack.Message, 8)
	for i := range ms {
		ms[i].Buf = make([]byte, 1500)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got := 0; got < 3; {
		n, err := c.ReadBatch(ms)
		if err != nil {
			panic(err)
		}
		for _, m := range ms[:n] {
			fmt.Printf("%s from %v to %v\n", m.Buf[:m.N], m.Src, m.Dst)
		}
		got += n
	}
	// Output:
	// datagram 0 from 10.0.0.2:4000 to 239.1.2.3
	// datagram 1 from 10.0.0.2:4000 to 239.1.2.3
	// datagram 2 from 10.0.0.2:4000 to 239.1.2.3
}

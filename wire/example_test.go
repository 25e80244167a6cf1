package wire_test

import (
	"fmt"
	"net/netip"

	"github.com/mcstack/mcstack/wire"
)

// Build a complete IGMPv3 report frame: Ethernet, IPv4 with Router Alert
// and TTL 1 to 224.0.0.22, then the report (RFC 9776 §4.2).
func Example_buildIGMPv3Report() {
	src := netip.MustParseAddr("192.0.2.1")
	rep := wire.IGMPv3Report{Records: []wire.GroupRecord{{
		Type:    wire.ChangeToInclude,
		Group:   netip.MustParseAddr("232.1.1.1"),
		Sources: []netip.Addr{netip.MustParseAddr("192.0.2.100")},
	}}}
	buf := make([]byte, 0, 1500)
	mac, _ := wire.MulticastMAC(wire.IGMPv3Routers)
	buf = wire.AppendEthernet(buf, mac, wire.MAC{2, 0, 0, 0, 0, 1}, wire.EtherTypeIPv4)
	igmp, err := rep.Append(nil)
	if err != nil {
		panic(err)
	}
	buf, err = wire.AppendIPv4(buf, wire.IPv4{TOS: 0xc0, TTL: 1, Protocol: wire.ProtoIGMP,
		Src: src, Dst: wire.IGMPv3Routers, RouterAlert: true}, igmp)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(buf), "bytes to", mac)
	fmt.Printf("% x\n", buf[14+24:])
	// Output:
	// 58 bytes to 01:00:5e:00:00:16
	// 22 00 2f 96 00 00 00 01 03 00 00 01 e8 01 01 01 c0 00 02 64
}

// Parse a received frame layer by layer.
func ExampleParseEthernet() {
	frame := []byte{
		0x01, 0x00, 0x5e, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x08, 0x00, // Ethernet
		0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x81, 0x18, // IPv4, IHL 6
		0xc0, 0x00, 0x02, 0xfe, 0xe0, 0x00, 0x00, 0x01, 0x94, 0x04, 0x00, 0x00, // src, dst, Router Alert
		0x11, 0x64, 0xee, 0x9b, 0x00, 0x00, 0x00, 0x00, // IGMPv2 general query, 10 s
	}
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		fmt.Println(err)
		return
	}
	ip, err := wire.ParseIPv4(eth.Payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, err := wire.ParseIGMP(ip.Payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch m := msg.(type) {
	case wire.IGMPv12:
		fmt.Printf("IGMPv2 query from %v, group %v, max resp %d/10 s, RA %v\n", ip.Src, m.Group, m.MaxRespTime, ip.RouterAlert)
	case wire.IGMPv3Query:
		fmt.Println("IGMPv3 query", m.Group)
	}
	// A truncated copy fails with a typed error.
	_, err = wire.ParseIPv4(eth.Payload[:22])
	fmt.Println(err)
	// Output:
	// IGMPv2 query from 192.0.2.254, group 0.0.0.0, max resp 100/10 s, RA true
	// wire: ipv4 options: truncated: shorter than IHL
}

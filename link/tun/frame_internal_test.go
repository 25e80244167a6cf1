//go:build linux

package tun

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/mcstack/mcstack/wire"
)

var self = wire.MAC{0x02, 0, 0, 0, 0, 0x42}

func ipPacket(t testing.TB, src, dst netip.Addr) []byte {
	t.Helper()
	u, err := wire.AppendUDP(nil, src, dst, 1, 2, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if dst.Is4() {
		b, err = wire.AppendIPv4(nil, wire.IPv4{TTL: 1, Protocol: wire.ProtoUDP, Src: src, Dst: dst}, u)
	} else {
		b, err = wire.AppendIPv6(nil, wire.IPv6{HopLimit: 1, NextHeader: wire.ProtoUDP, Src: src, Dst: dst}, u)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameIP(t *testing.T) {
	s4, s6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, tc := range []struct {
		dst       string
		wantDst   wire.MAC
		etherType uint16
	}{
		{"239.129.2.3", wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}, wire.EtherTypeIPv4},
		{"224.0.0.22", wire.MAC{0x01, 0x00, 0x5e, 0, 0, 0x16}, wire.EtherTypeIPv4},
		{"255.255.255.255", wire.BroadcastMAC, wire.EtherTypeIPv4},
		{"192.0.2.2", self, wire.EtherTypeIPv4},
		{"ff02::16", wire.MAC{0x33, 0x33, 0, 0, 0, 0x16}, wire.EtherTypeIPv6},
		{"ff3e::8000:1234", wire.MAC{0x33, 0x33, 0x80, 0, 0x12, 0x34}, wire.EtherTypeIPv6},
		{"2001:db8::2", self, wire.EtherTypeIPv6},
	} {
		dst := netip.MustParseAddr(tc.dst)
		src := s4
		if dst.Is6() {
			src = s6
		}
		pkt := ipPacket(t, src, dst)
		frame := append(make([]byte, wire.EthernetHeaderLen), pkt...)
		if !frameIP(frame, self) {
			t.Fatalf("%s: not framed", tc.dst)
		}
		eth, err := wire.ParseEthernet(frame)
		if err != nil {
			t.Fatal(err)
		}
		if eth.Dst != tc.wantDst || eth.Src != PeerMAC || eth.EtherType != tc.etherType || !bytes.Equal(eth.Payload, pkt) {
			t.Errorf("%s: dst %v src %v type %#x", tc.dst, eth.Dst, eth.Src, eth.EtherType)
		}
		// The multicast destinations map as wire.MulticastMAC does.
		if dst.IsMulticast() {
			if m, _ := wire.MulticastMAC(dst); m != eth.Dst {
				t.Errorf("%s: %v, wire.MulticastMAC says %v", tc.dst, eth.Dst, m)
			}
		}
	}
	for name, pkt := range map[string][]byte{
		"empty":      nil,
		"version 5":  {0x50, 0, 0, 0},
		"short ipv4": ipPacket(t, s4, s4)[:19],
		"short ipv6": ipPacket(t, s6, s6)[:39],
	} {
		if frameIP(append(make([]byte, wire.EthernetHeaderLen), pkt...), self) {
			t.Errorf("%s: framed", name)
		}
	}
}

func TestWriteRefusesNonIP(t *testing.T) {
	b := &backend{}
	pkt := ipPacket(t, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("239.1.1.1"))
	for name, f := range map[string][]byte{
		"arp":             append(wire.AppendEthernet(nil, self, PeerMAC, 0x0806), make([]byte, 28)...),
		"ipv6 type, ipv4": append(wire.AppendEthernet(nil, self, PeerMAC, wire.EtherTypeIPv6), pkt...),
		"empty payload":   wire.AppendEthernet(nil, self, PeerMAC, wire.EtherTypeIPv4),
		"vlan":            append(wire.AppendEthernetVLAN(nil, self, PeerMAC, 10, wire.EtherTypeIPv4), pkt...),
	} {
		if err := b.Write(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFrameIPDoesNotAllocate(t *testing.T) {
	frame := append(make([]byte, wire.EthernetHeaderLen), ipPacket(t, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("239.1.1.1"))...)
	if n := testing.AllocsPerRun(100, func() { frameIP(frame, self) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// FuzzFrameIP: any packet is either refused or framed with a header that
// matches its version and destination, and the packet itself is untouched.
func FuzzFrameIP(f *testing.F) {
	f.Add(ipPacket(f, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("239.1.1.1")))
	f.Add(ipPacket(f, netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("ff02::1")))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		frame := append(make([]byte, wire.EthernetHeaderLen), pkt...)
		if !frameIP(frame, self) {
			return
		}
		if !bytes.Equal(frame[wire.EthernetHeaderLen:], pkt) {
			t.Fatal("packet modified")
		}
		et := binary.BigEndian.Uint16(frame[12:])
		switch pkt[0] >> 4 {
		case 4:
			if et != wire.EtherTypeIPv4 || len(pkt) < 20 {
				t.Fatalf("IPv4 packet of %d bytes framed as %#x", len(pkt), et)
			}
		case 6:
			if et != wire.EtherTypeIPv6 || len(pkt) < 40 {
				t.Fatalf("IPv6 packet of %d bytes framed as %#x", len(pkt), et)
			}
		default:
			t.Fatalf("version %d framed", pkt[0]>>4)
		}
		dst := wire.MAC(frame[:6])
		if dst != self && !dst.IsMulticast() {
			t.Fatalf("destination %v", dst)
		}
	})
}

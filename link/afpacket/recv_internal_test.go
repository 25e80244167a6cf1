//go:build linux

package afpacket

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mcstack/mcstack/wire"
)

var (
	src4 = netip.MustParseAddr("192.0.2.1")
	dst4 = netip.MustParseAddr("239.1.2.3")
	src6 = netip.MustParseAddr("fe80::1")
	dst6 = netip.MustParseAddr("ff12::1234")
	macS = wire.MAC{0x02, 0, 0, 0, 0, 1}
	macD = wire.MAC{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}
)

// l4Frame builds an Ethernet frame (with a VLAN tag when vlan) carrying an
// IP packet of protocol proto whose payload is seg, from src to dst, padded
// to the Ethernet minimum.
func l4Frame(t *testing.T, vlan bool, src, dst netip.Addr, proto uint8, seg []byte) []byte {
	t.Helper()
	var b []byte
	var err error
	if src.Is4() {
		if vlan {
			b = wire.AppendEthernetVLAN(nil, macD, macS, 10, wire.EtherTypeIPv4)
		} else {
			b = wire.AppendEthernet(nil, macD, macS, wire.EtherTypeIPv4)
		}
		b, err = wire.AppendIPv4(b, wire.IPv4{TTL: 1, Protocol: proto, Src: src, Dst: dst}, seg)
	} else {
		b = wire.AppendEthernet(nil, macD, macS, wire.EtherTypeIPv6)
		b, err = wire.AppendIPv6(b, wire.IPv6{HopLimit: 1, NextHeader: proto, Src: src, Dst: dst}, seg)
	}
	if err != nil {
		t.Fatal(err)
	}
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// udpSeg returns a UDP datagram with a correct checksum.
func udpSeg(t *testing.T, src, dst netip.Addr, payload []byte) []byte {
	t.Helper()
	b, err := wire.AppendUDP(nil, src, dst, 40000, 5000, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// l4 returns the transport segment of a frame built by l4Frame.
func l4(t *testing.T, frame []byte) (seg []byte, src, dst netip.Addr) {
	t.Helper()
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		t.Fatal(err)
	}
	if eth.EtherType == wire.EtherTypeIPv4 {
		ip, err := wire.ParseIPv4(eth.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return ip.Payload, ip.Src, ip.Dst
	}
	ip, err := wire.ParseIPv6(eth.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return ip.Payload, ip.Src, ip.Dst
}

// makePartial replaces the checksum at off in the frame's transport segment
// with what a CHECKSUM_PARTIAL skb holds there: the folded pseudo-header sum
// (the kernel's ~csum_tcpudp_magic(..., 0)), or zero for ICMPv6, and
// returns the correct value it replaced.
func makePartial(t *testing.T, frame []byte, proto uint8, off int) uint16 {
	t.Helper()
	seg, src, dst := l4(t, frame)
	orig := binary.BigEndian.Uint16(seg[off:])
	partial := uint16(wire.PseudoHeaderSum(src, dst, proto, len(seg)))
	if proto == wire.ProtoICMPv6 {
		partial = 0
	}
	binary.BigEndian.PutUint16(seg[off:], partial)
	return orig
}

func TestCompleteChecksumUDP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vlan     bool
		src, dst netip.Addr
		payload  string
	}{
		{"ipv4", false, src4, dst4, "hello, even"},
		{"ipv4-odd", false, src4, dst4, "hello, odd!"},
		{"ipv4-vlan", true, src4, dst4, "tagged in band"},
		{"ipv6", false, src6, dst6, "hello over IPv6"},
		{"ipv6-empty", false, src6, dst6, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := l4Frame(t, tc.vlan, tc.src, tc.dst, wire.ProtoUDP, udpSeg(t, tc.src, tc.dst, []byte(tc.payload)))
			want := makePartial(t, f, wire.ProtoUDP, 6)
			seg, src, dst := l4(t, f)
			if _, err := wire.ParseUDP(seg, src, dst); err == nil {
				t.Fatal("partial checksum verifies; the test frame is not in the broken state")
			}
			if !completeChecksum(f) {
				t.Fatal("completeChecksum did not write a checksum")
			}
			if got := binary.BigEndian.Uint16(seg[6:]); got != want {
				t.Fatalf("checksum %#04x, want %#04x", got, want)
			}
			u, err := wire.ParseUDP(seg, src, dst)
			if err != nil {
				t.Fatalf("ParseUDP after completion: %v", err)
			}
			if string(u.Payload) != tc.payload {
				t.Fatalf("payload %q, want %q", u.Payload, tc.payload)
			}
		})
	}
}

// TestCompleteChecksumUDPZero: a UDP checksum that computes to zero is
// written as 0xffff (RFC 768), since zero means "no checksum".
func TestCompleteChecksumUDPZero(t *testing.T) {
	payload := []byte("xx??") // the last word is chosen below
	seg := udpSeg(t, src4, dst4, payload)
	// With the last word zero the checksum is c = ^S; making the last
	// word c gives a sum of S + ^S = 0xffff, whose complement is zero.
	binary.BigEndian.PutUint16(seg[len(seg)-2:], 0)
	seg[6], seg[7] = 0, 0
	c := wire.Checksum(seg, wire.PseudoHeaderSum(src4, dst4, wire.ProtoUDP, len(seg)))
	binary.BigEndian.PutUint16(seg[len(seg)-2:], c)
	if z := wire.Checksum(seg, wire.PseudoHeaderSum(src4, dst4, wire.ProtoUDP, len(seg))); z != 0 {
		t.Fatalf("test construction: checksum %#04x, want 0", z)
	}
	f := l4Frame(t, false, src4, dst4, wire.ProtoUDP, seg)
	makePartial(t, f, wire.ProtoUDP, 6)
	if !completeChecksum(f) {
		t.Fatal("completeChecksum did not write a checksum")
	}
	s, src, dst := l4(t, f)
	if got := binary.BigEndian.Uint16(s[6:]); got != 0xffff {
		t.Fatalf("checksum %#04x, want 0xffff", got)
	}
	if _, err := wire.ParseUDP(s, src, dst); err != nil {
		t.Fatalf("ParseUDP: %v", err)
	}
}

func TestCompleteChecksumTCPAndICMPv6(t *testing.T) {
	// A 20-byte TCP header plus 3 payload bytes; the checksum is at 16.
	tcp := make([]byte, 23)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12] = 5 << 4
	copy(tcp[20:], "abc")
	binary.BigEndian.PutUint16(tcp[16:], wire.Checksum(tcp, wire.PseudoHeaderSum(src4, dst4, protoTCP, len(tcp))))
	f := l4Frame(t, false, src4, dst4, protoTCP, tcp)
	want := makePartial(t, f, protoTCP, 16)
	if !completeChecksum(f) {
		t.Fatal("TCP: no checksum written")
	}
	seg, src, dst := l4(t, f)
	if got := binary.BigEndian.Uint16(seg[16:]); got != want {
		t.Fatalf("TCP checksum %#04x, want %#04x", got, want)
	}
	if wire.Checksum(seg, wire.PseudoHeaderSum(src, dst, protoTCP, len(seg))) != 0 {
		t.Fatal("TCP checksum does not verify")
	}

	// ICMPv6 echo request.
	icmp := []byte{128, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g', '!'}
	binary.BigEndian.PutUint16(icmp[2:], wire.ICMPv6Checksum(src6, dst6, icmp))
	f = l4Frame(t, false, src6, dst6, wire.ProtoICMPv6, icmp)
	makePartial(t, f, wire.ProtoICMPv6, 2)
	seg, src, dst = l4(t, f)
	if wire.VerifyICMPv6(src, dst, seg) == nil {
		t.Fatal("ICMPv6 test frame verifies before completion")
	}
	if !completeChecksum(f) {
		t.Fatal("ICMPv6: no checksum written")
	}
	if err := wire.VerifyICMPv6(src, dst, seg); err != nil {
		t.Fatalf("ICMPv6 after completion: %v", err)
	}
}

// TestCompleteChecksumLeavesAlone: frames it must not modify.
func TestCompleteChecksumLeavesAlone(t *testing.T) {
	udp := udpSeg(t, src4, dst4, []byte("data"))
	frag := l4Frame(t, false, src4, dst4, wire.ProtoUDP, udp)
	// Set More Fragments and fix the IPv4 header checksum.
	ip := frag[14:34]
	ip[6] |= 0x20
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip, 0))

	// An IPv6 fragment: Fragment header, then the UDP datagram.
	fh := append([]byte{wire.ProtoUDP, 0, 0, 1, 0, 0, 0, 7}, udpSeg(t, src6, dst6, []byte("data"))...)
	frag6 := l4Frame(t, false, src6, dst6, wire.ProtoFragment, fh)

	igmp := l4Frame(t, false, src4, dst4, wire.ProtoIGMP, []byte{0x16, 0, 0x12, 0x34, 239, 1, 2, 3})

	other := make([]byte, 60)
	copy(other, macD[:])
	binary.BigEndian.PutUint16(other[12:], 0x88b5)

	badUDPLen := l4Frame(t, false, src4, dst4, wire.ProtoUDP, udp)
	binary.BigEndian.PutUint16(badUDPLen[14+20+4:], 200)

	for name, f := range map[string][]byte{
		"ipv4 fragment": frag, "ipv6 fragment": frag6, "igmp": igmp,
		"not ip": other, "udp length beyond packet": badUDPLen,
	} {
		before := bytes.Clone(f)
		if completeChecksum(f) {
			t.Errorf("%s: completeChecksum wrote a checksum", name)
		}
		if !bytes.Equal(f, before) {
			t.Errorf("%s: frame modified", name)
		}
	}

	// Every prefix of a valid frame: no panic, no write past the end.
	full := l4Frame(t, true, src4, dst4, wire.ProtoUDP, udpSeg(t, src4, dst4, []byte("0123456789")))
	for i := range len(full) {
		completeChecksum(bytes.Clone(full[:i]))
	}
}

func TestCompleteChecksumDoesNotAllocate(t *testing.T) {
	f4 := l4Frame(t, false, src4, dst4, wire.ProtoUDP, udpSeg(t, src4, dst4, make([]byte, 1000)))
	f6 := l4Frame(t, false, src6, dst6, wire.ProtoUDP, udpSeg(t, src6, dst6, make([]byte, 1000)))
	if n := testing.AllocsPerRun(100, func() {
		completeChecksum(f4)
		completeChecksum(f6)
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

// cmsg appends one control message with the given level, type and data.
func cmsg(b []byte, level, typ int32, data []byte) []byte {
	m := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&m[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(m[unix.CmsgLen(0):], data)
	return append(b, m...)
}

func TestParseAuxdata(t *testing.T) {
	ad := unix.TpacketAuxdata{Status: unix.TP_STATUS_CSUMNOTREADY | unix.TP_STATUS_VLAN_VALID, Len: 100, Snaplen: 100, Net: 14, Vlan_tci: 0x200a, Vlan_tpid: 0x8100}
	data := unsafe.Slice((*byte)(unsafe.Pointer(&ad)), sizeofTpacketAuxdata)
	if sizeofTpacketAuxdata != 20 {
		t.Fatalf("sizeof(struct tpacket_auxdata) = %d, want 20", sizeofTpacketAuxdata)
	}
	oob := cmsg(cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16)), unix.SOL_PACKET, unix.PACKET_AUXDATA, data)
	got := parseAuxdata(oob)
	if want := (auxdata{ok: true, status: ad.Status, vlanTCI: 0x200a}); got != want {
		t.Fatalf("parseAuxdata = %+v, want %+v", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { parseAuxdata(oob) }); n != 0 {
		t.Fatalf("parseAuxdata: %v allocations per run, want 0", n)
	}
	for name, b := range map[string][]byte{
		"empty":      nil,
		"other only": cmsg(nil, unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16)),
		"short data": cmsg(nil, unix.SOL_PACKET, unix.PACKET_AUXDATA, data[:12]),
		"bad length": func() []byte {
			b := cmsg(nil, unix.SOL_PACKET, unix.PACKET_AUXDATA, data)
			(*unix.Cmsghdr)(unsafe.Pointer(&b[0])).SetLen(1000)
			return b
		}(),
		"header only": cmsg(nil, unix.SOL_PACKET, unix.PACKET_AUXDATA, nil)[:unix.SizeofCmsghdr-1],
	} {
		if got := parseAuxdata(b); got.ok {
			t.Errorf("%s: parseAuxdata = %+v, want not ok", name, got)
		}
	}
}

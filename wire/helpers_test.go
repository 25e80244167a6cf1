package wire

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// hx decodes a hex string; spaces, newlines and '|' separators are ignored.
func hx(s string) []byte {
	r := strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "")
	b, err := hex.DecodeString(r.Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// refCsum is an independent, deliberately naive RFC 1071 checksum used to
// build the golden packets: byte by byte, with the end-around carry folded
// after every addition.
func refCsum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(all[i])*256 + uint32(all[i+1])
		if s > 0xffff {
			s = s - 0x10000 + 1
		}
	}
	return uint16(^s)
}

// patch stores refCsum(parts...) big-endian at b[off:] (the field must be
// zero in b when it is part of parts).
func patch(b []byte, off int, parts ...[]byte) []byte {
	c := refCsum(parts...)
	b[off], b[off+1] = byte(c>>8), byte(c)
	return b
}

// pseudo6 is the IPv6 pseudo-header (RFC 8200 §8.1) built by hand.
func pseudo6(src, dst netip.Addr, length int, nh byte) []byte {
	s, d := src.As16(), dst.As16()
	p := append(append([]byte{}, s[:]...), d[:]...)
	return append(p, byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, nh)
}

// pseudo4 is the IPv4 pseudo-header (RFC 768) built by hand.
func pseudo4(src, dst netip.Addr, length int, proto byte) []byte {
	s, d := src.As4(), dst.As4()
	p := append(append([]byte{}, s[:]...), d[:]...)
	return append(p, 0, proto, byte(length>>8), byte(length))
}

// igmpMsg returns hand-written IGMP bytes with the checksum patched in.
func igmpMsg(s string) []byte {
	b := hx(s)
	return patch(b, 2, b)
}

// mldMsg returns hand-written ICMPv6 bytes with the checksum for src→dst.
func mldMsg(src, dst netip.Addr, s string) []byte {
	b := hx(s)
	return patch(b, 2, pseudo6(src, dst, len(b), 58), b)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// appender is implemented by every IGMP message type.
type igmpAppender interface {
	IGMPMessage
	Append([]byte) ([]byte, error)
}

type mldAppender interface {
	MLDMessage
	Append([]byte, netip.Addr, netip.Addr) ([]byte, error)
}

func mustIGMP(t testing.TB, m IGMPMessage) []byte {
	t.Helper()
	b, err := m.(igmpAppender).Append(nil)
	if err != nil {
		t.Fatalf("Append(%+v): %v", m, err)
	}
	return b
}

func mustMLD(t testing.TB, m MLDMessage, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := m.(mldAppender).Append(nil, src, dst)
	if err != nil {
		t.Fatalf("Append(%+v): %v", m, err)
	}
	return b
}

func TestRefCsumMatchesRFC1071Example(t *testing.T) {
	// RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2 (folded),
	// so the checksum is ^ddf2 = 220d.
	b := hx("0001 f203 f4f5 f6f7")
	if got := refCsum(b); got != 0x220d {
		t.Fatalf("refCsum = %#04x, want 0x220d", got)
	}
	if got := Checksum(b, 0); got != 0x220d {
		t.Fatalf("Checksum = %#04x, want 0x220d", got)
	}
}

// frame4 builds an Ethernet frame with an IPv4 packet (TTL 1, TOS 0xc0)
// from host4 to dst carrying body.
func frame4(t *testing.T, proto uint8, dst netip.Addr, ra bool, body []byte) []byte {
	t.Helper()
	mac, _ := MulticastMAC(dst)
	b := AppendEthernet(nil, mac, hostMAC, EtherTypeIPv4)
	b, err := AppendIPv4(b, IPv4{TOS: 0xc0, TTL: 1, Protocol: proto, Src: host4, Dst: dst, RouterAlert: ra}, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frame6 builds an Ethernet frame with an IPv6 packet (hop limit 1) from
// src to dst carrying body.
func frame6(t *testing.T, nh uint8, src, dst netip.Addr, ra bool, body []byte) []byte {
	t.Helper()
	mac, _ := MulticastMAC(dst)
	b := AppendEthernet(nil, mac, hostMAC, EtherTypeIPv6)
	b, err := AppendIPv6(b, IPv6{HopLimit: 1, NextHeader: nh, Src: src, Dst: dst, RouterAlert: ra}, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

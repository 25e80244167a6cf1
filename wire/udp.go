package wire

import (
	"encoding/binary"
	"net/netip"
)

// UDP is a parsed UDP datagram (RFC 768).
type UDP struct {
	SrcPort, DstPort uint16
	Payload          []byte // trimmed to the length field; aliases the buffer
}

func sameFamily(src, dst netip.Addr) (v4, ok bool) {
	switch {
	case src.Is4() && dst.Is4():
		return true, true
	case src.Is6() && dst.Is6():
		return false, true
	}
	return false, false
}

// ParseUDP parses the UDP datagram b carried from src to dst. The length
// field must be at least 8 and fit in b (bytes after it are ignored). The
// checksum is verified over the pseudo-header (RFC 768; RFC 8200 §8.1); a
// zero checksum means "none" over IPv4 and is refused over IPv6 (RFC 8200
// §8.1). src and dst must be of the same family. It does not allocate.
func ParseUDP(b []byte, src, dst netip.Addr) (UDP, error) {
	return parseUDP(b, src, dst, true)
}

// ParseUDPOffloaded is ParseUDP for a datagram whose checksum was already
// verified below the stack (a NIC's receive checksum offload, or the
// kernel, reported to the link backend): it checks everything ParseUDP
// checks except the checksum's value. A zero checksum over IPv6 is still
// refused (no checksum at all is not a verified one).
func ParseUDPOffloaded(b []byte, src, dst netip.Addr) (UDP, error) {
	return parseUDP(b, src, dst, false)
}

func parseUDP(b []byte, src, dst netip.Addr, verify bool) (UDP, error) {
	v4, ok := sameFamily(src, dst)
	if !ok {
		return UDP{}, peUdpPseudoHeaderMalformed
	}
	if len(b) < UDPHeaderLen {
		return UDP{}, peUdpHeaderTruncated
	}
	l := int(binary.BigEndian.Uint16(b[4:]))
	if l < UDPHeaderLen {
		return UDP{}, peUdpLengthMalformed
	}
	if l > len(b) {
		return UDP{}, peUdpLengthTruncated
	}
	if binary.BigEndian.Uint16(b[6:]) == 0 {
		if !v4 {
			return UDP{}, peUdpChecksumChecksum
		}
	} else if verify && Checksum(b[:l], PseudoHeaderSum(src, dst, ProtoUDP, l)) != 0 {
		return UDP{}, peUdpChecksumChecksum2
	}
	return UDP{
		SrcPort: binary.BigEndian.Uint16(b[0:]),
		DstPort: binary.BigEndian.Uint16(b[2:]),
		Payload: b[UDPHeaderLen:l:l],
	}, nil
}

// AppendUDP appends a UDP header and payload to b with the checksum for the
// pseudo-header src, dst (always computed, also over IPv4; a computed zero is
// sent as 0xffff, RFC 768). It refuses addresses of mixed or invalid family
// and a length over 65535. It does not allocate when b has room.
func AppendUDP(b []byte, src, dst netip.Addr, srcPort, dstPort uint16, payload []byte) ([]byte, error) {
	if _, ok := sameFamily(src, dst); !ok {
		return b, eerr("udp", "source and destination are not of one address family")
	}
	l := UDPHeaderLen + len(payload)
	if l > 0xffff {
		return b, eerr("udp", "length %d exceeds 65535", l)
	}
	b, t := grow(b, l)
	binary.BigEndian.PutUint16(t[0:], srcPort)
	binary.BigEndian.PutUint16(t[2:], dstPort)
	binary.BigEndian.PutUint16(t[4:], uint16(l))
	t[6], t[7] = 0, 0
	copy(t[UDPHeaderLen:], payload)
	c := Checksum(t, PseudoHeaderSum(src, dst, ProtoUDP, l))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(t[6:], c)
	return b, nil
}
